/**
 * Agent / Workload API benchmark, side by side with the real SPIRE agent.
 *
 *   node --conditions=ztwim-source --import tsx bench/agent.ts [--duration 5] [--warmup 1]
 *        [--streams 1000] [--entries 1000] [--no-mixed] [--source] [--only spire|ztwim|mixed]
 *        [--prof-agent DIR] [--prof-server DIR] [--kinds jwt-cached,jwt-uncached,x509] [--clients 1,50]
 *        [--rotations 5] [--fetch-only] [--rounds 3] [--signing-limit off,on]
 *
 * Columns (each a fresh server + agent in a temp dir, started from the very same server.conf and
 * agent.conf text; every process is its own OS process):
 *   SPIRE   real spire-agent v1.13.0  attached to a real spire-server v1.13.0
 *   ztwim   ztwim agent               attached to the ztwim server
 *   mixed   ztwim agent               attached to the real spire-server (isolates the agent)
 * SPIRE v1.13.0 is what scripts/setup-interop.sh builds (~/.cache/ztwim/spire-v1.13.0/bin).
 * Missing binaries fail the bench with the setup hint.
 *
 * The load generator is bench/go/agentload (grpc-go + go-spiffe v2.9.0 Workload API stubs +
 * spire-api-sdk admin stubs), one separate process, identical for every column. The ztwim
 * server/agent run from the built packages (dist/) via bench/agent-proc.mjs, like a deployment;
 * `--source` runs the TypeScript sources through tsx instead. `--prof-agent DIR` writes a
 * `node --cpu-prof` profile of the ztwim agent, `--prof-server DIR` one of the ztwim server.
 *
 * Each column: 1,000 registration entries parented to the agent (one selects this machine's uid:
 * the watched workload; 999 select uids nobody has) exist before the agent starts; then
 *   1. FetchJWTSVID cached (one audience), uncached (a new audience per call: agent → server
 *      NewJWTSVID), FetchX509SVID (first response of the stream, then cancel); 1 and 50 clients,
 *      one connection each, closed loop, fixed duration: req/s, p50, p99;
 *   2. 1,000 FetchX509SVID streams (1,000 connections); the watched entry's DNS names are updated
 *      through the admin API; time from the update call returning to the new SVID on the first,
 *      median and last stream (5 entry updates, spread over the sync cycle); agent VmRSS with the streams open;
 *   3. entry create (admin API) → new SVID on a watching stream (5 entries).
 * Rate limits: both servers run with the same `ratelimit { attestation = true signing = … }`.
 * `--signing-limit off,on` (the default) measures every fetch row with SPIRE's per-IP signing limit
 * off on both servers, then the uncached JWT rows again with it on (SPIRE's default, 500/s per
 * IP) on both. Fetch rows are taken in `--rounds` (default 3) interleaved rounds: all columns run
 * at once and take turns row by row, so a noisy spell of the shared machine hits every column;
 * the table shows the median req/s and p99 of the rounds, the p99 range, and CPU seconds per
 * 1,000 calls of the agent and of its server; the load average (1 min) is printed with each figure.
 * Both agents run at their default 5 s sync interval (SPIRE's built-in default; ztwim
 * AGENT_DEFAULTS.syncIntervalMs), so 2 and 3 include a wait of 0–5 s for the next sync.
 *
 * Prints a Markdown table and writes bench/results/agent.md. About 5–6 minutes.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { goBuild, spireAgentBin, SPIRE_VERSION } from '../test/interop/lib/peers.ts';
import {
  agentJoinToken,
  BENCH_DIR,
  requireSpireBinaries,
  checkDistFresh,
  live,
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
import { flagValue, hasFlag, num, numList } from './lib/args.ts';

const DURATION = num('duration', 5);
const WARMUP = num('warmup', 1);
const STREAMS = num('streams', 1000);
const ENTRIES = num('entries', 1000);
/** Entry updates watched on the streams; spread evenly over the 5 s sync cycle (see agentload watch). */
const ROTATIONS = num('rotations', 5);
const SOURCE = hasFlag('source');
const PROF_DIR = flagValue('prof-agent');
const PROF_SERVER_DIR = flagValue('prof-server');
const ONLY = flagValue('only');
const MIXED = !hasFlag('no-mixed');
/** Experiments: only the fetch rows, printed as they finish; no watch/create phases, no table. */
const FETCH_ONLY = hasFlag('fetch-only');
const ROUNDS = num('rounds', 3);
/** Signing-limit settings, in order; the first runs every row, the others the uncached JWT rows. */
const SIGNING = (flagValue('signing-limit') ?? 'off,on').split(',').filter((x): x is 'off' | 'on' => x === 'off' || x === 'on');
/**
 * `--agent-cpus 0` (a taskset CPU list): both agents run pinned to those CPUs (issue #22's cores
 * rows). Pin the bench itself (`taskset -c 1 node … bench/agent.ts --agent-cpus 0`) to keep the
 * servers and the load generator, which inherit its affinity, off the agent's CPU.
 */
const AGENT_CPUS = flagValue('agent-cpus');
const TD = 'example.org';

interface FetchResult {
  kind: string;
  clients: number;
  count: number;
  errors: number;
  firstError?: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  loadgenCpu: number;
  pidCpu: number[];
  loadAvg?: number;
}
interface WatchTrial {
  firstMs: number;
  medianMs: number;
  lastMs: number;
  fanoutMs: number;
  got: number;
}
interface WatchResult {
  streams: number;
  openSeconds: number;
  trials: WatchTrial[];
  rssOpenKiB: number;
  rssKiB: number;
  hwmKiB: number;
}
interface CreateResult {
  latenciesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
}
interface SeedResult {
  watchedEntryId: string;
  watchedSpiffeId: string;
  created: number;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// Servers and agents.

interface Column {
  key: 'spire' | 'ztwim' | 'mixed';
  label: string;
  server: Impl;
  agent: Impl;
}

interface Running {
  server: Proc;
  agent: Proc;
  adminSocket: string;
  workloadSocket: string;
  agentId: string;
  seed: SeedResult;
  startSeconds: number;
}

const rateLimitConf = (signing: 'off' | 'on'): string => `  ratelimit {\n    attestation = true\n    signing = ${signing === 'on' ? 'true' : 'false'}\n  }\n`;

async function startColumn(col: Column, root: string, signing: 'off' | 'on'): Promise<Running> {
  const dir = join(root, `${col.key}-signing-${signing}`);
  const sdir = join(dir, 'server');
  const adir = join(dir, 'agent');
  mkdirSync(join(adir, 'data'), { recursive: true });
  const { server, adminSocket, port } = await startBenchServer(col.server, sdir, {
    trustDomain: TD,
    source: SOURCE,
    profDir: PROF_SERVER_DIR,
    extraServerConfig: rateLimitConf(signing),
  });
  const { token, agentId } = await agentJoinToken(adminSocket, TD, join(adir, 'bundle.pem'));
  const seed = await loadgen<SeedResult>('seed', ['-admin', adminSocket, '-parent', agentId, '-uid', String(UID), '-n', String(ENTRIES)], 120_000);
  // Both agents at their own default sync interval (5 s), memory KeyManager.
  const { conf: aconf, socket: workloadSocket } = writeBenchAgentConf(adir, { trustDomain: TD, port, token, logLevel: 'WARN' });
  const t0 = performance.now();
  const [agentName, agentCmd, agentArgv] =
    col.agent === 'spire'
      ? ['spire-agent', spireAgentBin(), ['run', '-config', aconf]]
      : ['ztwim agent', process.execPath, [...nodeArgs('agent', PROF_DIR, SOURCE), 'agent', aconf]];
  // taskset execs the agent: the pid the CPU columns read stays the agent's.
  const agent =
    AGENT_CPUS === undefined
      ? startProc(agentName, agentCmd, agentArgv, adir)
      : startProc(agentName, 'taskset', ['-c', AGENT_CPUS, agentCmd, ...agentArgv], adir);
  // `wait` polls FetchX509SVID until the watched SVID is served.
  const waitP = loadgen<{ seconds: number }>('wait', ['-socket', workloadSocket, '-spiffe-id', seed.watchedSpiffeId, '-timeout', '90s'], 100_000);
  const died = new Promise<never>((_, reject) =>
    agent.child.once('exit', (c) => reject(new Error(`${agent.name} exited (${String(c)}) during start-up:\n${agent.output().slice(-4000)}`))),
  );
  died.catch(() => undefined);
  await Promise.race([waitP, died]);
  const startSeconds = (performance.now() - t0) / 1000;
  await settle(agent);
  return { server, agent, adminSocket, workloadSocket, agentId, seed, startSeconds };
}

interface ColumnResult {
  col: Column;
  /** `${kind}/${clients}/${signing}` → one result per round. */
  fetch: Map<string, FetchResult[]>;
  watch?: WatchResult;
  create?: CreateResult;
  startSeconds: number;
  seedSeconds: number;
}

const ALL_KINDS = ['jwt-cached', 'jwt-uncached', 'x509'] as const;
// --kinds / --clients narrow the fetch rows (profiling one row); the table shows the rows run.
const KINDS = (flagValue('kinds')?.split(',') ?? ALL_KINDS).filter((k): k is (typeof ALL_KINDS)[number] => (ALL_KINDS as readonly string[]).includes(k));
const CLIENTS = numList('clients', [1, 50]);
/** The rows measured under a signing setting: all of them under the first, the uncached ones under the others. */
const kindsFor = (signing: 'off' | 'on'): Array<(typeof ALL_KINDS)[number]> => (signing === SIGNING[0] ? KINDS : KINDS.filter((k) => k === 'jwt-uncached'));

async function fetchRow(col: Column, r: Running, kind: string, clients: number, signing: string, round: number): Promise<FetchResult> {
  const res = await loadgen<FetchResult>(
    'fetch',
    [
      '-socket',
      r.workloadSocket,
      '-kind',
      kind,
      '-clients',
      String(clients),
      '-duration',
      `${DURATION}s`,
      '-warmup',
      `${WARMUP}s`,
      '-pids',
      `${r.agent.pid},${r.server.pid}`,
    ],
    (DURATION + WARMUP + 60) * 1000,
  );
  res.loadAvg = loadavg()[0] ?? NaN;
  console.error(
    `[agent bench] round ${round} signing-limit ${signing} ${col.label}: ${kind} ×${clients}: ${Math.round(res.rps)}/s p50 ${res.p50Ms.toFixed(2)} p99 ${res.p99Ms.toFixed(2)} ms, errors ${res.errors}; cpu agent ${res.pidCpu[0]?.toFixed(2)} server ${res.pidCpu[1]?.toFixed(2)} loadgen ${res.loadgenCpu.toFixed(2)}; load average ${res.loadAvg.toFixed(1)}`,
  );
  if (r.agent.exited()) throw new Error(`${r.agent.name} died during ${kind}:\n${r.agent.output().slice(-4000)}`);
  return res;
}

/**
 * Every column under each signing setting: the columns run at once and take turns row by row,
 * round after round; the stream phases run once, under the first setting, one column at a time.
 */
async function runColumns(cols: Column[], root: string): Promise<ColumnResult[]> {
  const results = new Map<Column['key'], ColumnResult>();
  for (const signing of SIGNING) {
    const running: Array<{ col: Column; r: Running }> = [];
    try {
      for (const col of cols) {
        console.error(`[agent bench] ${col.label} (signing limit ${signing}): starting`);
        const r = await startColumn(col, root, signing);
        running.push({ col, r });
        if (!results.has(col.key)) results.set(col.key, { col, fetch: new Map(), startSeconds: r.startSeconds, seedSeconds: r.seed.seconds });
      }
      for (let round = 1; round <= ROUNDS; round++) {
        for (const kind of kindsFor(signing)) {
          for (const clients of CLIENTS) {
            for (const { col, r } of round % 2 === 1 ? running : [...running].reverse()) {
              const res = await fetchRow(col, r, kind, clients, signing, round);
              const cr = results.get(col.key) as ColumnResult;
              const key = `${kind}/${clients}/${signing}`;
              cr.fetch.set(key, [...(cr.fetch.get(key) ?? []), res]);
            }
          }
        }
      }
      if (FETCH_ONLY || signing !== SIGNING[0]) continue;
      for (const { col, r } of running) {
        const cr = results.get(col.key) as ColumnResult;
        cr.watch = await loadgen<WatchResult>(
          'watch',
          [
            '-socket',
            r.workloadSocket,
            '-admin',
            r.adminSocket,
            '-entry-id',
            r.seed.watchedEntryId,
            '-spiffe-id',
            r.seed.watchedSpiffeId,
            '-streams',
            String(STREAMS),
            '-trials',
            String(ROTATIONS),
            '-agent-pid',
            String(r.agent.pid),
          ],
          240_000,
        );
        console.error(`[agent bench] ${col.label}: rotation ${JSON.stringify(cr.watch.trials)} rss ${(cr.watch.rssKiB / 1024).toFixed(0)} MiB`);
        cr.create = await loadgen<CreateResult>(
          'create',
          ['-socket', r.workloadSocket, '-admin', r.adminSocket, '-parent', r.agentId, '-uid', String(UID), '-trials', '5'],
          240_000,
        );
        console.error(`[agent bench] ${col.label}: entry create → SVID ${cr.create.latenciesMs.map((x) => x.toFixed(0)).join(', ')} ms`);
      }
    } finally {
      for (const { r } of running) {
        await r.agent.stop();
        await r.server.stop();
      }
    }
  }
  return [...results.values()];
}

// ---------------------------------------------------------------------------------------------
// Report.

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const f2 = (n: number): string => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
};
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;

interface FetchAgg {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p99Min: number;
  p99Max: number;
  errors: number;
  agentCpuPer1k: number;
  serverCpuPer1k: number;
  loadMin: number;
  loadMax: number;
  rounds: number;
}

/** CPU seconds per 1,000 calls of one process in one measured window (pidCpu is in cores). */
const cpuPer1k = (f: FetchResult, i: number): number => ((f.pidCpu[i] ?? NaN) * DURATION * 1000) / Math.max(1, f.count);

function aggregate(fs: FetchResult[] | undefined): FetchAgg | undefined {
  if (fs === undefined || fs.length === 0) return undefined;
  const p99s = fs.map((f) => f.p99Ms);
  const loads = fs.map((f) => f.loadAvg ?? NaN);
  return {
    rps: median(fs.map((f) => f.rps)),
    p50Ms: median(fs.map((f) => f.p50Ms)),
    p99Ms: median(p99s),
    p99Min: Math.min(...p99s),
    p99Max: Math.max(...p99s),
    errors: fs.reduce((n, f) => n + f.errors, 0),
    agentCpuPer1k: median(fs.map((f) => cpuPer1k(f, 0))),
    serverCpuPer1k: median(fs.map((f) => cpuPer1k(f, 1))),
    loadMin: Math.min(...loads),
    loadMax: Math.max(...loads),
    rounds: fs.length,
  };
}

function fetchCell(f: FetchAgg | undefined): string {
  if (f === undefined) return '—';
  const err = f.errors > 0 ? ` (${f.errors} errors)` : '';
  return `${int(f.rps)}/s · p50 ${f2(f.p50Ms)} · p99 ${f2(f.p99Ms)} ms (${f2(f.p99Min)}–${f2(f.p99Max)}) · CPU s per 1k calls: agent ${f.agentCpuPer1k.toFixed(3)}, server ${f.serverCpuPer1k.toFixed(3)}${err}`;
}

function verdict(ok: boolean, detail: string): string {
  return `${ok ? '**yes**' : '**no**'} (${detail})`;
}

function report(results: ColumnResult[]): string {
  const by = (k: Column['key']): ColumnResult | undefined => results.find((r) => r.col.key === k);
  const s = by('spire');
  const z = by('ztwim');
  const m = by('mixed');
  const rows: string[] = [];
  const row = (metric: string, sv: string, zv: string, target: string, mv: string): void => {
    rows.push(`| ${metric} | ${sv} | ${zv} | ${target} |${m !== undefined ? ` ${mv} |` : ''}`);
  };
  const label: Record<string, string> = {
    'jwt-cached': 'FetchJWTSVID, cached',
    'jwt-uncached': 'FetchJWTSVID, uncached',
    x509: 'FetchX509SVID (first response)',
  };
  for (const signing of SIGNING) {
    for (const kind of kindsFor(signing)) {
      for (const clients of CLIENTS) {
        const key = `${kind}/${clients}/${signing}`;
        const sf = aggregate(s?.fetch.get(key));
        const zf = aggregate(z?.fetch.get(key));
        let t = '—';
        if (sf !== undefined && zf !== undefined) {
          const ok = zf.rps >= sf.rps && zf.p99Ms <= sf.p99Ms && zf.errors === 0;
          t = verdict(
            ok,
            `req/s ${ratio(zf.rps, sf.rps)}, p99 ${ratio(zf.p99Ms, sf.p99Ms)}; load avg ${f2(Math.min(sf.loadMin, zf.loadMin))}–${f2(Math.max(sf.loadMax, zf.loadMax))}`,
          );
        }
        const limit = kind === 'jwt-uncached' ? `signing limit **${signing}** on both servers` : `signing limit ${signing} on both (not on this path)`;
        row(`${label[kind]}, ${clients} client${clients > 1 ? 's' : ''}; ${limit}`, fetchCell(sf), fetchCell(zf), t, fetchCell(aggregate(m?.fetch.get(key))));
      }
    }
  }
  const rot = (r: ColumnResult | undefined, f: (t: WatchTrial) => number): number => (r?.watch === undefined ? NaN : median(r.watch.trials.map(f)));
  const rotCell = (r: ColumnResult | undefined): string =>
    r?.watch === undefined ? '—' : `last ${int(rot(r, (t) => t.lastMs))} ms (first ${int(rot(r, (t) => t.firstMs))}, median ${int(rot(r, (t) => t.medianMs))})`;
  const cmpLower = (a: number, b: number, unit: string): string => (Number.isNaN(a) || Number.isNaN(b) ? '—' : verdict(a <= b, `${f2(a)} vs ${f2(b)} ${unit}`));
  row(
    `entry update → new X509-SVID on ${int(STREAMS)} watching streams`,
    rotCell(s),
    rotCell(z),
    cmpLower(
      rot(z, (t) => t.lastMs),
      rot(s, (t) => t.lastMs),
      'ms to the last stream',
    ),
    rotCell(m),
  );
  const fanCell = (r: ColumnResult | undefined): string => (r?.watch === undefined ? '—' : `${f2(rot(r, (t) => t.fanoutMs))} ms`);
  row(
    `… fan-out: first → last of ${int(STREAMS)} streams`,
    fanCell(s),
    fanCell(z),
    cmpLower(
      rot(z, (t) => t.fanoutMs),
      rot(s, (t) => t.fanoutMs),
      'ms',
    ),
    fanCell(m),
  );
  const createCell = (r: ColumnResult | undefined): string =>
    r?.create === undefined ? '—' : `median ${int(r.create.medianMs)} ms (${int(r.create.minMs)}–${int(r.create.maxMs)})`;
  row(
    '`entry create` → SVID on a watching stream (5 s sync)',
    createCell(s),
    createCell(z),
    cmpLower(z?.create?.medianMs ?? NaN, s?.create?.medianMs ?? NaN, 'ms median'),
    createCell(m),
  );
  const mib = (k: number): number => k / 1024;
  const rssCell = (r: ColumnResult | undefined): string => (r?.watch === undefined ? '—' : `${mib(r.watch.rssKiB).toFixed(0)} MiB`);
  row(
    `agent RSS, ${int(ENTRIES)} entries + ${int(STREAMS)} open streams`,
    rssCell(s),
    rssCell(z),
    cmpLower(mib(z?.watch?.rssKiB ?? NaN), mib(s?.watch?.rssKiB ?? NaN), 'MiB'),
    rssCell(m),
  );
  const startCell = (r: ColumnResult | undefined): string => (r === undefined ? '—' : `${r.startSeconds.toFixed(1)} s`);
  row(`agent start → watched SVID served (${int(ENTRIES)} entries)`, startCell(s), startCell(z), 'no target', startCell(m));

  const cpuRows: string[] = [];
  for (const r of results) {
    for (const signing of SIGNING) {
      for (const kind of kindsFor(signing)) {
        for (const clients of CLIENTS) {
          (r.fetch.get(`${kind}/${clients}/${signing}`) ?? []).forEach((f, i) => {
            cpuRows.push(
              `| ${r.col.label} | ${label[kind]}, ${clients} | ${signing} | ${i + 1} | ${int(f.count)} | ${f.errors} | ${int(f.rps)} | ${f2(f.p99Ms)} | ${(f.pidCpu[0] ?? NaN).toFixed(2)} | ${(f.pidCpu[1] ?? NaN).toFixed(2)} | ${cpuPer1k(f, 0).toFixed(3)} | ${cpuPer1k(f, 1).toFixed(3)} | ${f.loadgenCpu.toFixed(2)} | ${(f.loadAvg ?? NaN).toFixed(1)} |`,
            );
          });
        }
      }
    }
  }
  const trialRows = results
    .filter((r): r is ColumnResult & { watch: WatchResult; create: CreateResult } => r.watch !== undefined && r.create !== undefined)
    .map(
      (r) =>
        `| ${r.col.label} | ${r.watch.trials.map((t) => `${int(t.firstMs)} / ${int(t.medianMs)} / ${int(t.lastMs)}`).join(' · ')} | ${r.watch.openSeconds.toFixed(1)} s | ${mib(r.watch.rssOpenKiB).toFixed(0)} / ${mib(r.watch.rssKiB).toFixed(0)} / ${mib(r.watch.hwmKiB).toFixed(0)} MiB | ${r.create.latenciesMs.map((x) => int(x)).join(', ')} |`,
    );
  const header = `| metric | SPIRE agent ${SPIRE_VERSION} ↔ spire-server | ztwim agent ↔ ztwim server | target met? (ztwim vs SPIRE) |${m !== undefined ? ' ztwim agent ↔ spire-server |' : ''}`;
  const sep = `|---|---|---|---|${m !== undefined ? '---|' : ''}`;
  const lines = [
    '# Agent / Workload API benchmark: ztwim agent vs SPIRE agent',
    '',
    `${new Date().toISOString()} · Node ${process.version} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · SPIRE ${SPIRE_VERSION} (built by scripts/setup-interop.sh) · ztwim from ${SOURCE ? 'sources (tsx)' : 'the built packages (dist/)'}.`,
    '',
    `Every server, agent and the load generator (bench/go/agentload: grpc-go + go-spiffe v2.9.0 stubs, the same binary for every column) is its own OS process on this machine. Both servers and both agents start from the same server.conf / agent.conf text (sqlite, memory KeyManager, join_token, unix workload attestor, P-256 CA and workload keys, X509-SVID TTL 1 h, JWT-SVID TTL 5 min, log level WARN). ${int(ENTRIES)} registration entries are parented to the agent before it starts (1 selects this process's uid; ${int(ENTRIES - 1)} select uids nobody has). Closed-loop clients, one connection each, ${WARMUP} s warm-up then ${DURATION} s measured, ${ROUNDS} interleaved rounds per row (all columns running, taking turns row by row; medians shown, p99 range in brackets). Rate limits: both servers \`ratelimit { attestation = true, signing = … }\` as each row says: every row with SPIRE\'s per-IP signing limit (500 signings/s per caller IP, on by default) off on both servers, the uncached rows also with it on on both; cached and X.509 rows never reach the server\'s signing path. Cached JWT: one audience for every call; uncached: a new audience per call (agent → server NewJWTSVID). FetchX509SVID: open the stream, take the first response, cancel.`,
    '',
    header,
    sep,
    ...rows,
    '',
    "**Sync interval:** both agents run at their default 5 s (SPIRE: built-in default, `experimental.sync_interval` unset; ztwim: `AGENT_DEFAULTS.syncIntervalMs`). The SPIRE agent, and the ztwim agent attached to spire-server, learn of entry changes at their next sync, so for them the rotation and `entry create` rows include a wait of 0–5 s that depends on where in the sync cycle the change lands. A ztwim server also hints its ztwim agents when their entries change (`ztwim.agent.v1.AgentHints/Watch`, not part of SPIRE's API; debounced 100 ms), and the agent then syncs at once. The fan-out row (first → last stream) is the part that is the agent's own work. Rotation: the watched entry's DNS names are changed through the admin API (`BatchUpdateEntry`), which makes both agents mint a new SVID for it; times are from the update call returning; median of " +
      String(ROTATIONS) +
      ' updates, each issued at a different phase of the sync cycle (update k after a wait of (k−½)/' +
      String(ROTATIONS - 1) +
      ' × 5 s from the end of the previous one, which ends just after a sync, so the phases are spread evenly over the cycle for both agents; earlier versions of this bench waited 0.7 s and 1.6 s, which put two of three updates early in the cycle, i.e. ~4 s before the next sync). RSS is `VmRSS` of the agent process with the streams open, after the rotations.',
    '',
    '## Details',
    '',
    "Every round of every fetch row: the signing-limit setting of both servers, calls, req/s, p99, CPU in cores (2 available) of the agent process and its server process during the measured window, the same as CPU seconds per 1,000 calls, the load generator's CPU, and the machine's 1-minute load average when the row ended.",
    '',
    '| column | call, clients | signing limit | round | calls | errors | req/s | p99 ms | agent CPU | server CPU | agent CPU s / 1k calls | server CPU s / 1k calls | loadgen CPU | load avg |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...cpuRows,
    '',
    'Rotations (first / median / last stream, ms from the update returning), time to open the streams, RSS (streams just opened / after the rotations / peak VmHWM), `entry create` → SVID per entry (ms):',
    '',
    '| column | rotations | open streams | RSS | entry create → SVID |',
    '|---|---|--:|---|---|',
    ...trialRows,
    '',
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = Date.now();
  requireSpireBinaries('agent');
  if (!SOURCE) checkDistFresh();
  loadgenBin.path = goBuild(join(BENCH_DIR, 'go'), './agentload');
  const root = mkdtempSync(join(tmpdir(), 'ztwim-bench-agent-'));
  tmpDirs.add(root);
  if (PROF_DIR !== undefined) mkdirSync(PROF_DIR, { recursive: true });
  const cols: Column[] = [
    { key: 'spire', label: 'SPIRE', server: 'spire', agent: 'spire' },
    { key: 'ztwim', label: 'ztwim', server: 'ztwim', agent: 'ztwim' },
  ];
  if (MIXED) cols.push({ key: 'mixed', label: 'ztwim agent ↔ spire-server', server: 'spire', agent: 'ztwim' });
  const results = await runColumns(
    cols.filter((c) => ONLY === undefined || ONLY === c.key),
    root,
  );
  if (FETCH_ONLY) return;
  const md = report(results) + `\nWhole run: ${((Date.now() - t0) / 1000).toFixed(0)} s.\n`;
  process.stdout.write(md);
  if (ONLY === undefined) {
    writeResults('agent.md', md);
  }
}

runMain(main);
