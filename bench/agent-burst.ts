/**
 * Bursts of workloads on the Workload API, the ztwim agent beside SPIRE's agent in one run.
 *
 *   node --conditions=ztwim-source --import tsx bench/agent-burst.ts [--watchers 1000] [--jwt 200]
 *        [--spread-watchers 5000] [--spread 10] [--hold 10] [--settle 60] [--rounds 1]
 *        [--only spire|ztwim] [--server spire|ztwim] [--source] [--prof-agent DIR] [--agent-log-level warn]
 *
 * One real spire-server v1.13.0 (SQLite, P-256) with two agents attached, each its own process
 * and each with one registration entry for this uid (the unix attestor's `unix:uid`): SPIRE
 * v1.13.0's spire-agent and the ztwim agent (built packages via bench/agent-proc.mjs, with the
 * node flags of the `ztwim` command; `--source` runs the TypeScript through tsx). Both from the
 * same agent.conf text: join_token, memory KeyManager, default 5 s sync, no rate limits (the
 * agent has none to configure; SPIRE's limits are the server's).
 *
 * Rows (the agents take turns, SPIRE first, `--rounds` times):
 *   at once  `--watchers` go-spiffe X.509 watchers and `--jwt` JWT clients (a FetchJWTSVID loop
 *            each) connect at the same instant and stay `--hold` s;
 *   spread   `--spread-watchers` watchers started evenly over `--spread` s, the same JWT clients
 *            at once, everyone held `--spread` + `--hold` s.
 * The client is test/interop/go/burst (go-spiffe v2.9.0), one process per row. Columns: errors
 * any client saw, watchers served, time from each watcher's start to its first SVID (p50, p99,
 * max), time from the first start to the last watcher served, JWT-SVIDs fetched, the agent's
 * VmRSS before, its peak (sampled every 100 ms) and `--settle` s after every client closed, and
 * the load average (1 min) before and after the row: the machine is shared.
 *
 * `--server ztwim` attaches the agents to a ztwim server instead (driven through `ztwim server`,
 * the same CLI): with `--only ztwim` no SPIRE binary is needed.
 *
 * Prints a Markdown table and writes bench/results/agent-burst.md. About 4 minutes by default.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { goBuild, INTEROP_DIR, spireAgentBin, SPIRE_VERSION, ztwimNodeFlags } from '../test/interop/lib/peers.ts';
import { burstReportOf, type BurstReport } from '../test/interop/lib/burst.ts';
import {
  agentJoinToken,
  checkDistFresh,
  cpuTicks,
  nodeArgs,
  serverCli,
  settle,
  startBenchServer,
  startProc,
  tmpDirs,
  type Proc,
  writeBenchAgentConf,
  UID,
  type Impl,
} from './lib/procs.ts';
import { writeResults } from './lib/results-dir.ts';
import { flagValue, hasFlag, num } from './lib/args.ts';

const WATCHERS = num('watchers', 1000);
const JWT = num('jwt', 200);
const SPREAD_WATCHERS = num('spread-watchers', 5000);
const SPREAD_S = num('spread', 10);
const HOLD_S = num('hold', 10);
const SETTLE_S = num('settle', 60);
const ROUNDS = num('rounds', 1);
const ONLY = flagValue('only');
const SOURCE = hasFlag('source');
const PROF_DIR = flagValue('prof-agent');
const AGENT_LOG_LEVEL = flagValue('agent-log-level') ?? 'WARN';
const SERVER: 'spire' | 'ztwim' = flagValue('server') === 'ztwim' ? 'ztwim' : 'spire';
const TD = 'example.org';

interface Agent {
  impl: Impl;
  proc: Proc;
  socket: string;
}
interface Row {
  impl: Impl;
  scenario: string;
  r: BurstReport;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  rssAfterMiB: number;
  /** The agent's CPU time (user + system) from the row's start until every client closed. */
  cpuS: number;
  loadBefore: number;
  loadAfter: number;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

function runBurst(bin: string, argv: string[], timeoutMs: number): Promise<BurstReport> {
  const p = startProc('burst', bin, argv, tmpdir());
  const t = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  return new Promise<BurstReport>((resolve, reject) => {
    p.child.once('exit', (code) => {
      clearTimeout(t);
      void p.stop();
      const r = code === 0 ? burstReportOf(p.output()) : undefined;
      if (r === undefined) reject(new Error(`burst ${argv.join(' ')} failed (exit ${String(code)}):\n${p.output().slice(-4000)}`));
      else resolve(r);
    });
  });
}

async function startAgent(impl: Impl, root: string, port: number, adminSocket: string): Promise<Agent> {
  const adir = join(root, impl);
  mkdirSync(join(adir, 'data'), { recursive: true });
  const { token, agentId } = await agentJoinToken(adminSocket, TD, join(adir, 'bundle.pem'), SERVER);
  // The workload's entry exists before the agent starts: its first sync brings it.
  await serverCli(['entry', 'create', '-parentID', agentId, '-spiffeID', `spiffe://${TD}/burst/${impl}`, '-selector', `unix:uid:${UID}`], adminSocket, SERVER);
  const { conf, socket } = writeBenchAgentConf(adir, { trustDomain: TD, port, token, logLevel: AGENT_LOG_LEVEL });
  const proc =
    impl === 'spire'
      ? startProc('spire-agent', spireAgentBin(), ['run', '-config', conf], adir)
      : startProc('ztwim agent', process.execPath, [...nodeArgs('agent', PROF_DIR, SOURCE), 'agent', conf], adir);
  return { impl, proc, socket };
}

async function served(bin: string, a: Agent): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (a.proc.exited()) throw new Error(`${a.proc.name} exited during start-up:\n${a.proc.output().slice(-4000)}`);
    const r = await runBurst(bin, ['-addr', `unix://${a.socket}`, '-watchers', '1', '-jwt', '0', '-hold', '2s'], 10_000).catch(() => undefined);
    if (r?.watchersServed === 1) return;
    if (Date.now() > deadline) throw new Error(`${a.proc.name} served no SVID in 90 s:\n${a.proc.output().slice(-4000)}`);
    await delay(300);
  }
}

async function measure(bin: string, a: Agent, scenario: string, burstArgs: string[], holdS: number): Promise<Row> {
  const pid = a.proc.pid;
  const loadBefore = loadavg()[0] ?? NaN;
  const rssBeforeMiB = rssMiB(pid);
  const ticksBefore = cpuTicks(pid);
  let rssPeakMiB = rssBeforeMiB;
  const sampler = setInterval(() => {
    rssPeakMiB = Math.max(rssPeakMiB, rssMiB(pid));
  }, 100);
  let r: BurstReport;
  let cpuS: number;
  try {
    r = await runBurst(bin, ['-addr', `unix://${a.socket}`, ...burstArgs, '-hold', `${holdS}s`], (holdS + 60) * 1000);
    cpuS = (cpuTicks(pid) - ticksBefore) / 100; // USER_HZ
    await delay(SETTLE_S * 1000);
  } finally {
    clearInterval(sampler);
  }
  if (a.proc.exited()) throw new Error(`${a.proc.name} died during the burst:\n${a.proc.output().slice(-4000)}`);
  const row: Row = { impl: a.impl, scenario, r, rssBeforeMiB, rssPeakMiB, rssAfterMiB: rssMiB(pid), cpuS, loadBefore, loadAfter: loadavg()[0] ?? NaN };
  console.error(`[agent-burst] ${a.impl} ${scenario}: ${JSON.stringify(row)}`);
  return row;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => `${int(n)} ms`;

function report(rows: Row[], started: string): string {
  const label = (i: Impl): string => (i === 'spire' ? `SPIRE ${SPIRE_VERSION} spire-agent` : 'ztwim agent');
  const lines = rows.map((x) => {
    const errs = x.r.watchErrors + x.r.jwtErrors;
    return `| ${label(x.impl)} | ${x.scenario} | ${int(x.r.watchers)} + ${int(x.r.jwtClients)} JWT | ${int(errs)}${errs > 0 ? ` (${int(x.r.watchErrors)} X.509, ${int(x.r.jwtErrors)} JWT)` : ''} | ${int(x.r.watchersServed)} | ${ms(x.r.firstSvidP50Ms)} / ${ms(x.r.firstSvidP99Ms)} / ${ms(x.r.firstSvidMaxMs)} | ${ms(x.r.allServedMs)} | ${int(x.r.jwtOk)} | ${int(x.rssBeforeMiB)} / ${int(x.rssPeakMiB)} / ${int(x.rssAfterMiB)} MiB | ${x.cpuS.toFixed(1)} s | ${x.loadBefore.toFixed(1)} → ${x.loadAfter.toFixed(1)} |`;
  });
  const errors = rows.filter((x) => x.r.sampleErrors.length > 0).map((x) => `- ${label(x.impl)}, ${x.scenario}: ${x.r.sampleErrors.slice(0, 3).join(' · ')}`);
  return [
    '# Bursts of workloads on the Workload API: ztwim agent vs SPIRE agent',
    '',
    `${started} · Node ${process.version} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · SPIRE ${SPIRE_VERSION} · ztwim from ${SOURCE ? 'sources (tsx)' : 'the built packages (dist/)'}.`,
    '',
    `Settings, both agents: attached to one real ${SERVER === 'spire' ? `spire-server ${SPIRE_VERSION}` : 'ztwim server'} (SQLite, P-256 CA and SVID keys, X509-SVID TTL 1 h, JWT-SVID TTL 5 min, no rate limits configured), the same agent.conf text (join_token, memory KeyManager, unix workload attestor, default 5 s sync, log level ${AGENT_LOG_LEVEL}), one entry for this uid, each agent its own process; spire-agent with Go's defaults (GOMAXPROCS = ${cpus().length}), the ztwim agent with the \`ztwim\` command's node flags (\`${ztwimNodeFlags().join(' ') || 'none'}\`) and its default memory budget (\`-memoryBudget ${process.env['ZTWIM_MEMORY_BUDGET'] ?? '96'}\` MiB, bench/agent-proc.mjs). Client: test/interop/go/burst (go-spiffe v2.9.0), one process per row on the same machine. "at once": every client connects at the same instant and stays ${HOLD_S} s; "spread": the watchers start evenly over ${SPREAD_S} s, the JWT clients at once, all stay ${SPREAD_S + HOLD_S} s. Time to served is from each watcher's own start to its first X.509 SVID; "all served" from the first start to the last watcher served. RSS: the agent's VmRSS before, peak (sampled every 100 ms) and ${SETTLE_S} s after every client closed. Agent CPU: its user + system time from the row's start until the client exited (what the burst cost it, less sensitive to the machine's load than the times). Load: the machine's 1-minute load average before → after the row (2 cores, shared).`,
    '',
    '| agent | burst | clients | errors | watchers served | to served p50 / p99 / max | all served | JWT-SVIDs fetched | RSS before / peak / after | agent CPU | load |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...lines,
    ...(errors.length > 0 ? ['', 'First errors seen:', ...errors] : []),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  if (!SOURCE) checkDistFresh();
  const bin = goBuild(join(INTEROP_DIR, 'go'), './burst');
  const started = new Date().toISOString();
  const root = mkdtempSync(join(tmpdir(), 'ztwim-bench-burst-'));
  tmpDirs.add(root);
  const { server, adminSocket, port } = await startBenchServer(SERVER, join(root, 'server'), { trustDomain: TD, source: SOURCE });
  const impls: Impl[] = ONLY === 'spire' || ONLY === 'ztwim' ? [ONLY] : ['spire', 'ztwim'];
  const agents: Agent[] = [];
  try {
    for (const impl of impls) agents.push(await startAgent(impl, root, port, adminSocket));
    for (const a of agents) {
      await served(bin, a);
      await settle(a.proc);
    }
    const rows: Row[] = [];
    const common = ['-jwt', String(JWT)];
    for (let round = 0; round < ROUNDS; round++) {
      for (const a of agents) rows.push(await measure(bin, a, 'at once', ['-watchers', String(WATCHERS), ...common], HOLD_S));
      for (const a of agents)
        rows.push(
          await measure(bin, a, `spread over ${SPREAD_S} s`, ['-watchers', String(SPREAD_WATCHERS), '-spread', `${SPREAD_S}s`, ...common], SPREAD_S + HOLD_S),
        );
    }
    const md = report(rows, started);
    console.log(md);
    writeResults('agent-burst.md', md);
  } finally {
    for (const a of agents) await a.proc.stop();
    await server.stop();
  }
}

await main();
