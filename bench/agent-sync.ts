/**
 * Agent start with many entries: agent start → first sync since start → first workload served.
 *
 *   node --conditions=ztwim-source --import tsx bench/agent-sync.ts [--entries 1000,10000,100000]
 *        [--spire-max 10000] [--only ztwim|spire] [--source] [--prof-agent DIR]
 *
 * For each entry count, a fresh server (SQLite) and agent in a temp dir, each its own process,
 * from the same server.conf / agent.conf text as bench/agent.ts: N entries parented to the agent
 * exist before it starts (1 selects this process's uid: the watched workload; N−1 select uids
 * nobody has). Timed from the agent's spawn:
 *   - Workload API up: the socket exists;
 *   - first sync: ztwim logs `First sync complete` once every entry's SVID is minted; spire-agent
 *     starts its Workload API only after its first sync (manager Initialize), and mints at most
 *     `x509_svid_cache_max_size` (1,000) SVIDs ahead of demand (LRU cache), so for it this is the
 *     `Starting Workload and SDS APIs` log line;
 *   - first workload served: bench/go/agentload `wait` (go-spiffe stubs) polls FetchX509SVID
 *     every 200 ms until the watched SVID arrives (so ±200 ms);
 * then the agent's CPU time and VmRSS once it has settled. SPIRE columns only up to --spire-max
 * entries (filling spire-server with 100,000 entries takes ~7 min at its ~230 creates/s).
 * Writes bench/results/agent-sync.md.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { goBuild, spireAgentBin, SPIRE_VERSION } from '../test/interop/lib/peers.ts';
import {
  agentJoinToken,
  BENCH_DIR,
  checkDistFresh,
  cpuTicks,
  loadgen,
  loadgenBin,
  nodeArgs,
  settle,
  startBenchServer,
  startProc,
  tmpDirs,
  waitUntil,
  type Proc,
  writeBenchAgentConf,
  UID,
  type Impl,
} from './lib/procs.ts';
import { runMain, writeResults } from './lib/results-dir.ts';
import { flagValue, hasFlag, numList } from './lib/args.ts';

const COUNTS = numList('entries', [1000, 10_000, 100_000]);
const SPIRE_MAX = Number(flagValue('spire-max') ?? 10_000);
const ONLY = flagValue('only');
const SOURCE = hasFlag('source');
const PROF_DIR = flagValue('prof-agent');
const TD = 'example.org';

interface Row {
  impl: Impl;
  entries: number;
  seedSeconds: number;
  socketMs: number;
  syncMs: number;
  servedMs: number;
  cpuSeconds: number;
  serverCpuSeconds: number;
  rssMiB: number;
}

/** Milliseconds after `t0` at which `proc`'s output first contains `text`. */
function whenOutput(proc: Proc, text: string, t0: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf = (buf + d.toString()).slice(-4096);
      if (buf.includes(text)) {
        off();
        resolve(performance.now() - t0);
      }
    };
    const onExit = (): void => {
      off();
      reject(new Error(`${proc.name} exited before logging "${text}":\n${proc.output().slice(-4000)}`));
    };
    const off = (): void => {
      proc.child.stdout?.off('data', onData);
      proc.child.stderr?.off('data', onData);
      proc.child.off('exit', onExit);
    };
    proc.child.stdout?.on('data', onData);
    proc.child.stderr?.on('data', onData);
    proc.child.once('exit', onExit);
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

async function run(impl: Impl, entries: number, root: string): Promise<Row> {
  const dir = join(root, `${impl}-${entries}`);
  const sdir = join(dir, 'server');
  const adir = join(dir, 'agent');
  mkdirSync(join(adir, 'data'), { recursive: true });
  const { server, adminSocket, port } = await startBenchServer(impl, sdir, { trustDomain: TD, source: SOURCE });
  let agent: Proc | undefined;
  try {
    const { token, agentId } = await agentJoinToken(adminSocket, TD, join(adir, 'bundle.pem'));
    console.error(`[agent-sync bench] ${impl} ${entries}: seeding`);
    const seed = await loadgen<{ watchedSpiffeId: string; seconds: number }>(
      'seed',
      ['-admin', adminSocket, '-parent', agentId, '-uid', String(UID), '-n', String(entries)],
      1_800_000,
    );
    const { conf: aconf, socket: workloadSocket } = writeBenchAgentConf(adir, { trustDomain: TD, port, token, logLevel: 'INFO' });
    console.error(`[agent-sync bench] ${impl} ${entries}: starting the agent`);
    const serverTicks0 = cpuTicks(server.pid);
    const t0 = performance.now();
    const a =
      impl === 'spire'
        ? startProc('spire-agent', spireAgentBin(), ['run', '-config', aconf], adir)
        : startProc('ztwim agent', process.execPath, [...nodeArgs('agent', PROF_DIR, SOURCE), 'agent', aconf], adir);
    agent = a;
    const synced = whenOutput(a, impl === 'spire' ? 'Starting Workload and SDS APIs' : 'First sync complete', t0);
    synced.catch(() => undefined);
    let socketMs = 0;
    const socketUp = waitUntil(
      'workload socket',
      a,
      () => {
        try {
          readFileSync(workloadSocket);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
        }
        socketMs = performance.now() - t0;
        return true;
      },
      600_000,
    );
    const served = loadgen<{ seconds: number }>('wait', ['-socket', workloadSocket, '-spiffe-id', seed.watchedSpiffeId, '-timeout', '600s'], 620_000).then(
      () => performance.now() - t0,
    );
    const [servedMs, syncMs] = await Promise.all([served, synced, socketUp.then(() => undefined)]).then(([s, y]) => [s, y] as const);
    await settle(a, 120_000);
    const row: Row = {
      impl,
      entries,
      seedSeconds: seed.seconds,
      socketMs,
      syncMs,
      servedMs,
      cpuSeconds: cpuTicks(a.pid) / 100,
      serverCpuSeconds: (cpuTicks(server.pid) - serverTicks0) / 100,
      rssMiB: rssMiB(a.pid),
    };
    console.error(`[agent-sync bench] ${JSON.stringify(row)}`);
    return row;
  } finally {
    await agent?.stop();
    await server.stop();
  }
}

const ms = (x: number): string => `${Math.round(x).toLocaleString('en-US')} ms`;

function report(rows: Row[]): string {
  const lines = [
    '# Agent start with many entries: ztwim agent vs SPIRE agent',
    '',
    `${new Date().toISOString()} · Node ${process.version} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · SPIRE ${SPIRE_VERSION} · ztwim from ${SOURCE ? 'sources (tsx)' : 'the built packages (dist/)'}.`,
    '',
    "Each row: a fresh server (SQLite) and agent, each its own process, N entries parented to the agent before it starts (1 for this uid: the watched workload; N−1 for uids nobody has). Times from the agent's spawn. ztwim's first sync ends when every entry's SVID is minted; spire-agent's when its Workload API starts (it mints at most 1,000 SVIDs ahead of demand, the rest when a workload asks). First workload served: go-spiffe stubs polling FetchX509SVID every 200 ms until the watched SVID arrives. CPU: user+system seconds of the agent process (from its start) and of the server process (from the agent's start) once the agent has settled; RSS: the agent's VmRSS then. Rate limits: no \`ratelimit\` block, so SPIRE's defaults on both servers: per caller IP 1 attestation/s and 500 X.509 signings/s, which the agents' first-sync signing is held to.",
    '',
    '| agent | entries | Workload API up | first sync done | first workload served | agent CPU | server CPU | agent RSS | (seeding) |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ${r.impl === 'spire' ? `SPIRE ${SPIRE_VERSION}` : 'ztwim'} | ${r.entries.toLocaleString('en-US')} | ${ms(r.socketMs)} | ${ms(r.syncMs)} | ${ms(r.servedMs)} | ${r.cpuSeconds.toFixed(1)} s | ${r.serverCpuSeconds.toFixed(1)} s | ${Math.round(r.rssMiB)} MiB | ${r.seedSeconds.toFixed(0)} s |`,
    ),
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (!SOURCE) checkDistFresh();
  loadgenBin.path = goBuild(join(BENCH_DIR, 'go'), './agentload');
  const root = mkdtempSync(join(tmpdir(), 'ztwim-bench-agent-sync-'));
  tmpDirs.add(root);
  if (PROF_DIR !== undefined) mkdirSync(PROF_DIR, { recursive: true });
  const rows: Row[] = [];
  for (const n of COUNTS) {
    for (const impl of ['spire', 'ztwim'] as const) {
      if (ONLY !== undefined && ONLY !== impl) continue;
      if (impl === 'spire' && n > SPIRE_MAX) continue;
      rows.push(await run(impl, n, root));
    }
  }
  const md = report(rows);
  process.stdout.write(md);
  if (ONLY === undefined) {
    writeResults('agent-sync.md', md);
  }
}

runMain(main);
