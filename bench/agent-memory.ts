/**
 * Agent and server memory, ztwim beside SPIRE v1.13.0 in one run.
 *
 *   node --conditions=ztwim-source --import tsx bench/agent-memory.ts [--entries 1,1000]
 *        [--streams 0,1000] [--load 10] [--after 10,60] [--clients 8] [--only spire|ztwim]
 *        [--memory-budget MiB]
 *
 * For every (entries, streams) pair, SPIRE's server + agent and then ztwim's (each its own OS
 * process, from the same server.conf / agent.conf text: SQLite, memory KeyManager, join_token,
 * unix workload attestor, P-256, X509-SVID TTL 1 h, JWT-SVID TTL 5 min, log level WARN, no rate
 * limit settings on either side) start in a fresh temp dir; `entries` registration entries are
 * parented to the agent before it starts (one selects this process's uid, the others uids nobody
 * has). ztwim runs as a user runs it: `packages/cli/bin/ztwim.js agent run` / `server run` (the
 * built CLI bundle, its shebang's node flags, its default memory budget unless --memory-budget).
 * Then, VmRSS of the agent from /proc:
 *   idle     after the agent served the watched SVID and its CPU settled (< 5 % of a core for 1 s)
 *   streams  with `streams` FetchX509SVID streams open (bench/go/agentload hold; kept to the end)
 *   load     peak sampled every 250 ms while go-spiffe clients (bench/go/agentload fetch, grpc-go)
 *            call for `--load` s: `--clients` on FetchX509SVID and as many on FetchJWTSVID
 *            (one audience), at once
 *   +10 s, +60 s after the load ended (`--after`)
 * and the server's VmRSS at rest: right after it is healthy with an empty datastore, and once the
 * agent is idle (entries created, agent attested and synced).
 *
 * Writes bench/results/agent-memory.md (or $ZTWIM_BENCH_RESULTS). Needs the SPIRE binaries
 * (scripts/setup-interop.sh) and a built tree (`npm run build`). With the defaults about 12 min.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { goBuild, spireAgentBin, spireServerBin, SPIRE_VERSION, ZTWIM_BIN } from '../test/interop/lib/peers.ts';
import { runBinary } from '../test/interop/lib/spire-admin.ts';
import {
  agentJoinToken,
  BENCH_DIR,
  loadgen,
  requireSpireBinaries,
  writeBenchServerConf,
  loadgenBin,
  settle,
  startProc,
  tmpDirs,
  waitUntil,
  type Proc,
  writeBenchAgentConf,
  UID,
  type Impl,
} from './lib/procs.ts';
import { runMain, writeResults } from './lib/results-dir.ts';
import { flagValue, num, numList } from './lib/args.ts';

const ENTRIES = numList('entries', [1, 1000]);
const STREAMS = numList('streams', [0, 1000]);
const LOAD_S = num('load', 10);
const AFTER_S = numList('after', [10, 60]);
const CLIENTS = num('clients', 8);
const ONLY = flagValue('only');
const BUDGET = flagValue('memory-budget');
const TD = 'example.org';

interface Row {
  impl: Impl;
  entries: number;
  streams: number;
  settings: string;
  serverStartKiB: number;
  serverIdleKiB: number;
  idleKiB: number;
  streamsKiB: number | undefined;
  loadPeakKiB: number;
  afterKiB: number[];
  serverEndKiB: number;
  calls: number;
  errors: number;
}

function statusKiB(pid: number, field = 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]);
}

/** The ztwim command as a user starts it (its shebang's node flags). */
/**
 * The node flag the shipped daemons run with (deploy/systemd's NODE_OPTIONS, the image's entry):
 * the `ztwim` shebang itself carries none, so that Node's built-in code cache is used by commands.
 */
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4'];

function ztwimArgv(sub: 'agent' | 'server', conf: string): string[] {
  return [sub, 'run', '-config', conf, ...(BUDGET !== undefined ? ['-memoryBudget', BUDGET] : [])];
}

function settingsOf(impl: Impl): string {
  if (impl === 'spire') {
    return `spire-agent/spire-server ${SPIRE_VERSION}, Go runtime defaults (GOGC=100, no GOMEMLIMIT), no \`ratelimit\` block`;
  }
  return `\`ztwim … run\` (node ${DAEMON_NODE_FLAGS.join(' ')}), memory budget ${BUDGET !== undefined ? `${BUDGET} MiB (-memoryBudget)` : 'default'}, no rate limit`;
}

async function startServer(impl: Impl, sdir: string): Promise<{ server: Proc; adminSocket: string; port: number }> {
  const { sconf, adminSocket, port } = await writeBenchServerConf(sdir, TD);
  const server =
    impl === 'spire'
      ? startProc('spire-server', spireServerBin(), ['run', '-config', sconf], sdir)
      : startProc('ztwim server', process.execPath, [...DAEMON_NODE_FLAGS, ZTWIM_BIN, ...ztwimArgv('server', sconf)], sdir);
  // Both answer spire-server's healthcheck (grpc.health.v1 on the admin socket).
  await waitUntil(`${impl} server healthy`, server, async () => (await runBinary(spireServerBin(), ['healthcheck', '-socketPath', adminSocket])).status === 0);
  return { server, adminSocket, port };
}

async function runRow(impl: Impl, entries: number, streams: number, root: string): Promise<Row> {
  const dir = mkdtempSync(join(root, `${impl}-${entries}-${streams}-`));
  const sdir = join(dir, 'server');
  const adir = join(dir, 'agent');
  mkdirSync(join(adir, 'data'), { recursive: true });
  console.error(`[agent-memory] ${impl}, ${entries} entries, ${streams} streams: starting`);
  const { server, adminSocket, port } = await startServer(impl, sdir);
  let agent: Proc | undefined;
  let hold: Proc | undefined;
  try {
    await settle(server);
    const serverStartKiB = statusKiB(server.pid);
    const { token, agentId } = await agentJoinToken(adminSocket, TD, join(adir, 'bundle.pem'));
    const seed = await loadgen<{ watchedSpiffeId: string }>(
      'seed',
      ['-admin', adminSocket, '-parent', agentId, '-uid', String(UID), '-n', String(entries)],
      120_000,
    );
    const { conf: aconf, socket: workloadSocket } = writeBenchAgentConf(adir, { trustDomain: TD, port, token, logLevel: 'WARN' });
    agent =
      impl === 'spire'
        ? startProc('spire-agent', spireAgentBin(), ['run', '-config', aconf], adir)
        : startProc('ztwim agent', process.execPath, [...DAEMON_NODE_FLAGS, ZTWIM_BIN, ...ztwimArgv('agent', aconf)], adir);
    await loadgen('wait', ['-socket', workloadSocket, '-spiffe-id', seed.watchedSpiffeId, '-timeout', '90s'], 100_000);
    await settle(agent);
    await settle(server);
    const idleKiB = statusKiB(agent.pid);
    const serverIdleKiB = statusKiB(server.pid);
    let streamsKiB: number | undefined;
    if (streams > 0) {
      const holdFor = LOAD_S + Math.max(...AFTER_S) + 120;
      hold = startProc(
        'agentload hold',
        loadgenBin.path,
        ['hold', '-socket', workloadSocket, '-streams', String(streams), '-duration', `${holdFor}s`],
        BENCH_DIR,
      );
      const h = hold;
      await waitUntil(`${streams} streams open`, h, () => h.output().includes('"open"'), 90_000);
      await settle(agent);
      streamsKiB = statusKiB(agent.pid);
    }
    // Load: FetchX509SVID and FetchJWTSVID (cached) clients at once; sample the agent's RSS.
    let peak = 0;
    let sampling = true;
    const a = agent;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, statusKiB(a.pid));
        await delay(250);
      }
    })();
    type Fetch = { count: number; errors: number };
    const fetch = (kind: string): Promise<Fetch> =>
      loadgen<Fetch>(
        'fetch',
        ['-socket', workloadSocket, '-kind', kind, '-clients', String(CLIENTS), '-duration', `${LOAD_S}s`, '-warmup', '0s'],
        (LOAD_S + 60) * 1000,
      );
    const loads = await Promise.all([fetch('x509'), fetch('jwt-cached')]);
    sampling = false;
    await sampler;
    const loadEnd = performance.now();
    const afterKiB: number[] = [];
    for (const s of [...AFTER_S].sort((x, y) => x - y)) {
      const wait = loadEnd + s * 1000 - performance.now();
      if (wait > 0) await delay(wait);
      if (hold !== undefined && hold.exited()) throw new Error(`agentload hold ended early:\n${hold.output().slice(-2000)}`);
      afterKiB.push(statusKiB(agent.pid));
    }
    return {
      impl,
      entries,
      streams,
      settings: settingsOf(impl),
      serverStartKiB,
      serverIdleKiB,
      idleKiB,
      streamsKiB,
      loadPeakKiB: peak,
      afterKiB,
      serverEndKiB: statusKiB(server.pid),
      calls: loads.reduce((n, l) => n + l.count, 0),
      errors: loads.reduce((n, l) => n + l.errors, 0),
    };
  } finally {
    await hold?.stop();
    await agent?.stop();
    await server.stop();
  }
}

const mib = (k: number | undefined): string => (k === undefined ? '—' : `${(k / 1024).toFixed(0)}`);

function report(rows: Row[], seconds: number): string {
  const after = [...AFTER_S].sort((x, y) => x - y);
  const lines = [
    '# Agent and server memory: ztwim beside SPIRE',
    '',
    `${new Date().toISOString()} · Node ${process.version} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · SPIRE ${SPIRE_VERSION} · bench/agent-memory.ts --entries ${ENTRIES.join(',')} --streams ${STREAMS.join(',')} --load ${LOAD_S} --after ${after.join(',')} --clients ${CLIENTS}`,
    '',
    `VmRSS in MiB. Each row a fresh server + agent (SQLite, memory KeyManager, join_token, unix attestor, P-256, log level WARN) with the given registration entries on the agent's node. Load: ${CLIENTS} go-spiffe clients on FetchX509SVID and ${CLIENTS} on FetchJWTSVID (cached) at once for ${LOAD_S} s; "streams" FetchX509SVID streams (one connection each) stay open from before the load to the end.`,
    '',
    `| agent | entries | streams | agent idle | with streams | during load (peak) | ${after.map((s) => `+${s} s`).join(' | ')} | server at start | server at rest (agent synced) | server at end | calls (errors) | settings |`,
    `|---|--:|--:|--:|--:|--:|${after.map(() => '--:|').join('')}--:|--:|--:|--:|---|`,
    ...rows.map(
      (r) =>
        `| ${r.impl === 'spire' ? `SPIRE ${SPIRE_VERSION}` : 'ztwim'} | ${r.entries.toLocaleString('en-US')} | ${r.streams.toLocaleString('en-US')} | ${mib(r.idleKiB)} | ${mib(r.streamsKiB)} | ${mib(r.loadPeakKiB)} | ${r.afterKiB.map((k) => mib(k)).join(' | ')} | ${mib(r.serverStartKiB)} | ${mib(r.serverIdleKiB)} | ${mib(r.serverEndKiB)} | ${r.calls.toLocaleString('en-US')} (${r.errors}) | ${r.settings} |`,
    ),
    '',
    `Whole run: ${seconds.toFixed(0)} s.`,
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const t0 = Date.now();
  requireSpireBinaries('agent-memory');
  loadgenBin.path = goBuild(join(BENCH_DIR, 'go'), './agentload');
  const root = mkdtempSync(join(tmpdir(), 'ztwim-bench-mem-'));
  tmpDirs.add(root);
  const rows: Row[] = [];
  for (const entries of ENTRIES) {
    for (const streams of STREAMS) {
      for (const impl of ['spire', 'ztwim'] as const) {
        if (ONLY !== undefined && ONLY !== impl) continue;
        const r = await runRow(impl, entries, streams, root);
        console.error(
          `[agent-memory] ${impl} ${entries}/${streams}: idle ${mib(r.idleKiB)} streams ${mib(r.streamsKiB)} load ${mib(r.loadPeakKiB)} after ${r.afterKiB.map(mib).join('/')} MiB; server ${mib(r.serverStartKiB)}/${mib(r.serverIdleKiB)}/${mib(r.serverEndKiB)} MiB`,
        );
        if (r.errors > 0) throw new Error(`${impl}: ${r.errors} failed calls under load`);
        rows.push(r);
      }
    }
  }
  const md = report(rows, (Date.now() - t0) / 1000);
  process.stdout.write(md);
  writeResults('agent-memory.md', md);
}

runMain(main);
