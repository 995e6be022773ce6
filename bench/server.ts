/**
 * Server bench, side by side with the real SPIRE server.
 *
 *   node --conditions=ztwim-source --import tsx bench/server.ts [--entries 100000] [--only spire,sqlite,pg] [--source]
 *   node --conditions=ztwim-source --import tsx bench/server.ts --start-only [--starts 15] [--only spire,sqlite]
 *
 * Three servers, each a separate OS process started from the same SPIRE-style server.conf
 * (join_token node attestor, disk KeyManager, log level WARN; no telemetry block on either side,
 * so neither serves Prometheus metrics, as both do by default), one after the other:
 *   - SPIRE v1.13.0 `spire-server run` with the sqlite3 datastore (binary from scripts/setup-interop.sh),
 *   - ztwim `ztwim server run` (the compiled CLI, packages/cli/dist) with SQLite,
 *   - ztwim `ztwim server run` with PostgreSQL (the throwaway cluster of scripts/pg-test-server.sh).
 * Every server is driven by the same Node client (@ztwim/proto over connect-node): the admin API
 * over the Unix socket, the agent API over mTLS on the TCP port. Calls are sequential.
 *
 * Rows: entry create rate with one entry per BatchCreateEntry call and with 50 per call (to 10k,
 * then to 100k); ListEntries (pages of 500, until done) at 10k and 100k; server RSS at 100k;
 * GetAuthorizedEntries for one join_token agent that owns 1,000 of the 100,000 entries;
 * time from process start to Health/Check SERVING (and to the first full authorised-entries
 * answer) with 100k entries on disk.
 *
 * Prints one Markdown table and writes bench/results/server.md. About 8 minutes at 100k entries
 * on the 2-core dev machine (SPIRE's fill takes most of it); `--entries 10000` for a quick run
 * (the rows then say 1k/10k). Needs the SPIRE binaries (fails naming scripts/setup-interop.sh
 * otherwise; `--only sqlite,pg` runs without them) and a built tree (`npx tsc -b`; `--source` runs
 * the ztwim server through tsx instead). ZTWIM_BENCH_NODE_ARGS adds node flags to the ztwim server
 * processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"; ZTWIM_BENCH_ALT_BIN=<path of another
 * built bin/ztwim.js> adds it as one more SQLite server (before/after under the same load). Servers and temp dirs are removed at the
 * end, also on failure or Ctrl-C.
 *
 * --start-only: only the empty-datastore start row, --starts times per server (fresh temp dir and
 * data each time), the servers taking turns so load from other processes hits them alike; the
 * median and p90 of start → Health/Check SERVING and the CPU time the server process used until
 * then. Writes bench/results/server-start.md (seconds, not minutes).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from '@connectrpc/connect';
import pg from 'pg';
import {
  AgentService,
  BundleService,
  EntryService,
  HealthCheckResponse_ServingStatus,
  HealthService,
  createUnixGrpcTransport,
  type GrpcClientTransport,
} from '@ztwim/proto';
// The agent's own attestation client (join_token AttestAgent stream with a CSR, then mTLS).
import { ServerClient, attestAgent, type AgentCredentials } from '../packages/agent/src/client/server-client.ts';
import { findSpireBinary, freePort } from '../test/interop/lib/spire-admin.ts';
import { SPIRE_VERSION, ZTWIM_BIN, goBuild, ztwimNodeFlags } from '../test/interop/lib/peers.ts';
import { derToPem, TrustDomain } from '@ztwim/spiffe';
import { makeTmpDir, type TmpDir } from '../test/interop/lib/tmp.ts';
import { serverBenchConf, sqliteDataStore } from './lib/server-bench-conf.ts';
import { agentEntries as benchAgentEntries, bulkEntry as benchBulkEntry, type EntryInit } from './lib/server-bench-entries.ts';
import { removeLeftoversOnExit, tmpDirs } from './lib/leftovers.ts';
import { startProc as startHarnessProc, waitReady, type Proc } from '@ztwim/testkit/procs';
import { resultsDir } from './lib/results-dir.ts';
import { flagValue, hasFlag, num } from './lib/args.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TD = 'example.org';
const JOIN_TOKEN = 'bench-agent-token';
const AGENT_ID = `spiffe://${TD}/spire/agent/join_token/${JOIN_TOKEN}`;
const BATCH = 50;
const PAGE = 500;

// ---------------------------------------------------------------------------------------------
// Arguments

const TOTAL = num('entries', 100_000);
if (!Number.isInteger(TOTAL) || TOTAL < 1000 || TOTAL % 100 !== 0) {
  console.error('--entries must be a multiple of 100, at least 1000');
  process.exit(2);
}
const ONLY = new Set((flagValue('only') ?? 'spire,sqlite,pg').split(','));
const FROM_SOURCE = hasFlag('source');
const START_ONLY = hasFlag('start-only');
const STARTS = num('starts', 15);
const CHECKPOINT = TOTAL / 10; // the "10k" point
const SINGLES = Math.min(1000, CHECKPOINT / 2);
const AGENT_OWNED = TOTAL / 100; // the agent owns 1% (1,000 of 100,000)
const AUTH_CALLS = num('auth-calls', 50);
const LIST_RUNS = 3;

// ---------------------------------------------------------------------------------------------
// Formatting and measuring helpers

const k = (n: number): string => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : n.toLocaleString('en-US'));
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const log = (msg: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

/** utime+stime of a process in ms (from /proc/<pid>/stat; clock ticks are 100 Hz on Linux). */
function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m?.[1] === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

/**
 * Waits (at most 20 s) until the server process has been idle for 500 ms (< 5% of a core), so a
 * latency row does not include background work left over from the previous phase (index or
 * cache catch-up after a bulk import, GC). Applied the same way to every server.
 */
async function settle(pid: number): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline) {
    const c0 = procCpuMs(pid);
    await delay(500);
    if (procCpuMs(pid) - c0 < 25) return;
  }
}

/** Wall time of `fn`, with the client's and the server's CPU share of that wall time. */
interface Timed {
  readonly ms: number;
  readonly clientCpu: number;
  readonly serverCpu: number;
}
async function timed(pid: number, fn: () => Promise<void>): Promise<Timed> {
  const c0 = process.cpuUsage();
  const s0 = procCpuMs(pid);
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, clientCpu: (c.user + c.system) / 1000 / ms, serverCpu: (procCpuMs(pid) - s0) / ms };
}

// ---------------------------------------------------------------------------------------------
// The entry set (as in bench/datastore.ts): bulk entries under 99 other agents, plus the bench
// agent's 1% as direct children (60%) and grandchildren (40%).

const sid = (path: string): { trustDomain: string; path: string } => ({ trustDomain: TD, path });
const agentPath = `/spire/agent/join_token/${JOIN_TOKEN}`;

const bulkEntry = (i: number): EntryInit => benchBulkEntry(TD, i);
const agentEntries = (n: number): EntryInit[] => benchAgentEntries(TD, agentPath, '/agent', n);

const singleEntry = (i: number): EntryInit => ({
  spiffeId: sid(`/single/${i}`),
  parentId: sid('/single-parent'),
  selectors: [{ type: 's', value: String(i) }],
});

// ---------------------------------------------------------------------------------------------
// Server processes

interface Target {
  readonly key: 'spire' | 'sqlite' | 'alt' | 'pg';
  readonly label: string;
  /** DataStore plugin_data lines. */
  readonly dataStore: (dataDir: string) => string;
  readonly command: (conf: string) => { cmd: string; args: string[] };
}

// Never leave a server or a temp dir behind, whatever ends this process.
removeLeftoversOnExit((sig) => log(`${sig}: stopping servers`));

interface RunningProc extends Proc {
  readonly startedAt: number;
}

/** The server writes its output straight to `logFile` (no pipe through the bench's event loop). */
function startProc(cmd: string, args: string[], logFile: string, cwd: string): RunningProc {
  const startedAt = performance.now();
  return { ...startHarnessProc(cmd, cmd, args, { cwd, outputFile: logFile, stopGraceMs: 15_000 }), startedAt };
}

interface Admin {
  readonly transport: GrpcClientTransport;
  readonly entry: Client<typeof EntryService>;
  readonly agent: Client<typeof AgentService>;
  readonly bundle: Client<typeof BundleService>;
  readonly health: Client<typeof HealthService>;
}

function adminClient(socketPath: string): Admin {
  const transport = createUnixGrpcTransport(socketPath, { defaultTimeoutMs: 300_000, readMaxBytes: 256 * 2 ** 20 });
  return {
    transport,
    entry: createClient(EntryService, transport),
    agent: createClient(AgentService, transport),
    bundle: createClient(BundleService, transport),
    health: createClient(HealthService, transport),
  };
}

/** Polls grpc.health.v1.Health/Check on the admin socket (new connection per try, every 10 ms) until SERVING; returns ms since spawn. */
async function waitHealthy(p: RunningProc, socketPath: string, timeoutMs: number): Promise<number> {
  return await waitReady(
    'server healthy',
    p,
    async () => {
      if (!existsSync(socketPath)) return undefined;
      const t = createUnixGrpcTransport(socketPath, { defaultTimeoutMs: 2000 });
      try {
        const r = await createClient(HealthService, t).check({});
        return r.status === HealthCheckResponse_ServingStatus.SERVING ? performance.now() - p.startedAt : undefined;
      } catch {
        return undefined; // not listening yet
      } finally {
        t.close();
      }
    },
    { timeoutMs, intervalMs: 10 },
  );
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------
// The measurements

interface Result {
  singles?: Timed;
  batchTo10?: Timed;
  batchTo100?: Timed;
  list10?: number;
  list100?: number;
  list100Detail?: Timed;
  rssAfterList?: number;
  rssAfterAuth?: number;
  authFirst?: number;
  authMedian?: number;
  authDetail?: Timed;
  /** The same call from the Go client (bench/go/serverload): median and p99 of its timed calls. */
  authGoMedian?: number;
  authGoP99?: number;
  startEmpty?: number;
  startFull?: number;
  startToAuth?: number;
  error?: string;
}

async function createBatches(a: Admin, entries: readonly EntryInit[], per: number): Promise<void> {
  for (let i = 0; i < entries.length; i += per) {
    const r = await a.entry.batchCreateEntry({ entries: entries.slice(i, i + per) });
    for (const x of r.results) {
      if (x.status?.code !== 0) throw new Error(`BatchCreateEntry: ${x.status?.code} ${x.status?.message}`);
    }
  }
}

async function fill(a: Admin, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += BATCH) {
    const batch: EntryInit[] = [];
    for (let j = i; j < Math.min(to, i + BATCH); j++) batch.push(bulkEntry(j));
    await createBatches(a, batch, BATCH);
  }
}

async function listAll(a: Admin): Promise<number> {
  let pageToken = '';
  let n = 0;
  do {
    const r = await a.entry.listEntries({ pageSize: PAGE, pageToken });
    n += r.entries.length;
    pageToken = r.nextPageToken;
  } while (pageToken !== '');
  return n;
}

async function listMedian(a: Admin, pid: number, expect: number): Promise<{ ms: number; detail: Timed }> {
  const runs: Timed[] = [];
  for (let i = 0; i < LIST_RUNS; i++) {
    let n = 0;
    runs.push(await timed(pid, async () => void (n = await listAll(a))));
    if (n !== expect) throw new Error(`ListEntries returned ${n} entries, expected ${expect}`);
  }
  const ms = median(runs.map((r) => r.ms));
  return { ms, detail: runs.find((r) => r.ms === ms) ?? runs[0]! };
}

async function agentClient(a: Admin, port: number, creds?: AgentCredentials): Promise<ServerClient> {
  const b = await a.bundle.getBundle({});
  const roots = b.x509Authorities.map((x) => x.asn1);
  return new ServerClient({ host: '127.0.0.1', port, trustDomain: TrustDomain.parse(TD), roots }, creds);
}

let serverloadBin = '';

/**
 * AUTH_CALLS sequential GetAuthorizedEntries calls from bench/go/serverload (grpc-go, spire-api-sdk
 * stubs) over mTLS with the attested agent's SVID: the same Go client for every server.
 */
async function goAuthorised(
  tmp: TmpDir,
  port: number,
  creds: AgentCredentials,
  bundle: { x509Authorities: { asn1: Uint8Array }[] },
): Promise<{ medianMs: number; p99Ms: number }> {
  const cert = tmp.write('agent-svid.pem', creds.svid.marshal().certificates);
  const key = tmp.write('agent-svid.key', creds.svid.marshal().privateKey);
  const roots = tmp.write('bundle.pem', bundle.x509Authorities.map((x) => derToPem(x.asn1, 'CERTIFICATE')).join(''));
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      serverloadBin,
      ['-addr', `127.0.0.1:${port}`, '-cert', cert, '-key', key, '-bundle', roots, '-td', TD, '-want', String(AGENT_OWNED), '-calls', String(AUTH_CALLS)],
      { timeout: 120_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(`serverload: ${err.message}\n${stderr}`))),
    );
  });
  const r = JSON.parse(out) as { medianMs: number; p99Ms: number; entries: number };
  if (r.entries !== AGENT_OWNED) throw new Error(`serverload saw ${r.entries} entries, expected ${AGENT_OWNED}`);
  return { medianMs: r.medianMs, p99Ms: r.p99Ms };
}

/** GetAuthorizedEntries until it returns `want` entries (SPIRE's cache catches up with events every few seconds). */
async function authorisedUntil(c: ServerClient, want: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const t0 = performance.now();
    const r = await c.entry.getAuthorizedEntries({});
    const ms = performance.now() - t0;
    if (r.entries.length === want) return ms;
    if (r.entries.length > want) throw new Error(`GetAuthorizedEntries returned ${r.entries.length}, expected ${want}`);
    if (performance.now() > deadline) throw new Error(`GetAuthorizedEntries still returns ${r.entries.length} of ${want} after ${timeoutMs / 1000}s`);
    await delay(50);
  }
}

/** A server's temp dir, data dir, PostgreSQL database (for pg) and server.conf, ready to start. */
interface PreparedServer {
  readonly tmp: TmpDir;
  readonly socketPath: string;
  readonly logFile: string;
  readonly port: number;
  readonly cmd: string;
  readonly args: string[];
  /** Drops the database and removes the temp dir. */
  cleanup(): Promise<void>;
}

async function prepareServer(t: Target, pgUrl: string | undefined, prefix: string): Promise<PreparedServer> {
  const tmp = makeTmpDir(`${prefix}${t.key}-`);
  tmpDirs.add(tmp);
  const dataDir = join(tmp.path, 'data');
  mkdirSync(dataDir, { recursive: true });
  const socketPath = join(tmp.path, 'api.sock');
  const logFile = join(tmp.path, 'server.log');
  const port = await freePort();
  let dbName: string | undefined;
  let pgAdmin: pg.Client | undefined;
  let dataStore = t.dataStore(dataDir);
  if (t.key === 'pg') {
    if (pgUrl === undefined) throw new Error('no PostgreSQL URL');
    dbName = `ztwim_bench_${process.pid}`;
    pgAdmin = new pg.Client({ connectionString: pgUrl });
    await pgAdmin.connect();
    await pgAdmin.query(`DROP DATABASE IF EXISTS ${dbName}`);
    await pgAdmin.query(`CREATE DATABASE ${dbName}`);
    const u = new URL(pgUrl);
    u.pathname = `/${dbName}`;
    dataStore = `      database_type = "postgres"\n      connection_string = "${u.toString()}"`;
  }
  const conf = tmp.write('server.conf', serverBenchConf({ port, socketPath, trustDomain: TD, dataDir, dataStore }));
  const { cmd, args } = t.command(conf);
  return {
    tmp,
    socketPath,
    logFile,
    port,
    cmd,
    args,
    async cleanup() {
      if (pgAdmin !== undefined) {
        await pgAdmin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
        await pgAdmin.end();
      }
      tmp.cleanup();
      tmpDirs.delete(tmp);
    },
  };
}

async function benchTarget(t: Target, pgUrl: string | undefined): Promise<Result> {
  const res: Result = {};
  const { tmp, socketPath, logFile, port, cmd, args, cleanup } = await prepareServer(t, pgUrl, 'ztwim-bench-server-');
  let proc: RunningProc | undefined;
  let admin: Admin | undefined;
  let agentConn: ServerClient | undefined;
  try {
    log(`${t.label}: start (empty)`);
    proc = startProc(cmd, args, logFile, tmp.path);
    res.startEmpty = await waitHealthy(proc, socketPath, 120_000);
    const a = (admin = adminClient(socketPath));
    const pid = proc.pid;
    await a.agent.createJoinToken({ ttl: 24 * 3600, token: JOIN_TOKEN });

    log(`${t.label}: ${SINGLES} single creates`);
    res.singles = await timed(pid, async () => {
      for (let i = 0; i < SINGLES; i++) await createBatches(a, [singleEntry(i)], 1);
    });
    const owned = agentEntries(AGENT_OWNED);
    await createBatches(a, owned, BATCH);
    const base = SINGLES + owned.length;

    log(`${t.label}: batched creates to ${k(CHECKPOINT)}`);
    res.batchTo10 = await timed(pid, () => fill(a, 0, CHECKPOINT - base));
    log(`${t.label}: list at ${k(CHECKPOINT)}`);
    await settle(pid);
    res.list10 = (await listMedian(a, pid, CHECKPOINT)).ms;

    log(`${t.label}: batched creates to ${k(TOTAL)}`);
    res.batchTo100 = await timed(pid, () => fill(a, CHECKPOINT - base, TOTAL - base));
    log(`${t.label}: list at ${k(TOTAL)}`);
    await settle(pid);
    const l = await listMedian(a, pid, TOTAL);
    res.list100 = l.ms;
    res.list100Detail = l.detail;
    res.rssAfterList = rssMiB(pid);

    log(`${t.label}: attest and GetAuthorizedEntries`);
    const boot = await agentClient(a, port);
    let creds: AgentCredentials;
    try {
      creds = await attestAgent(boot, { type: 'join_token', token: JOIN_TOKEN });
    } finally {
      boot.close();
    }
    if (creds.svid.id.toString() !== AGENT_ID) throw new Error(`attested as ${creds.svid.id.toString()}, expected ${AGENT_ID}`);
    agentConn = await agentClient(a, port, creds);
    const c = agentConn;
    res.authFirst = await authorisedUntil(c, AGENT_OWNED, 60_000);
    await settle(pid);
    const times: number[] = [];
    res.authDetail = await timed(pid, async () => {
      for (let i = 0; i < AUTH_CALLS; i++) {
        const t0 = performance.now();
        const r = await c.entry.getAuthorizedEntries({});
        times.push(performance.now() - t0);
        if (r.entries.length !== AGENT_OWNED) throw new Error(`GetAuthorizedEntries returned ${r.entries.length}`);
      }
    });
    res.authMedian = median(times);
    log(`${t.label}: GetAuthorizedEntries from the Go client`);
    await settle(pid);
    const go = await goAuthorised(tmp, port, creds, await a.bundle.getBundle({}));
    res.authGoMedian = go.medianMs;
    res.authGoP99 = go.p99Ms;
    res.rssAfterAuth = rssMiB(pid);
    agentConn.close();
    agentConn = undefined;
    a.transport.close();
    admin = undefined;

    log(`${t.label}: restart with ${k(TOTAL)} entries on disk`);
    await proc.stop();
    proc = startProc(cmd, args, logFile, tmp.path);
    res.startFull = await waitHealthy(proc, socketPath, 1_800_000);
    const restarted = proc;
    const a2 = (admin = adminClient(socketPath));
    agentConn = await agentClient(a2, port, creds);
    await authorisedUntil(agentConn, AGENT_OWNED, 600_000);
    res.startToAuth = performance.now() - restarted.startedAt;
  } catch (e) {
    res.error = (e as Error).message.split('\n').slice(0, 3).join(' ');
    log(`${t.label}: FAILED: ${(e as Error).stack ?? String(e)}\n--- server log ---\n${tail(logFile)}`);
  } finally {
    agentConn?.close();
    admin?.transport.close();
    await proc?.stop();
    await cleanup();
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// Main

/**
 * Node flags of the ztwim server processes: those `ztwim` itself runs with (its shebang), then any
 * extra ones, e.g. ZTWIM_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
 */
const nodeArgs = [...ztwimNodeFlags(), ...(process.env['ZTWIM_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '')];

function ztwimCommand(conf: string): { cmd: string; args: string[] } {
  if (FROM_SOURCE) {
    return {
      cmd: process.execPath,
      args: [
        ...nodeArgs,
        '--conditions=ztwim-source',
        '--import',
        join(REPO, 'node_modules/tsx/dist/esm/index.mjs'),
        join(REPO, 'packages/cli/src/main.ts'),
        'server',
        'run',
        '-config',
        conf,
      ],
    };
  }
  return { cmd: process.execPath, args: [...nodeArgs, ZTWIM_BIN, 'server', 'run', '-config', conf] };
}

/** One start of `t` with an empty datastore: ms to SERVING, and the server's CPU ms until then. */
async function emptyStart(t: Target, pgUrl: string | undefined): Promise<{ ms: number; cpuMs: number }> {
  const srv = await prepareServer(t, pgUrl, 'ztwim-bench-start-');
  let proc: RunningProc | undefined;
  try {
    proc = startProc(srv.cmd, srv.args, srv.logFile, srv.tmp.path);
    const ms = await waitHealthy(proc, srv.socketPath, 120_000);
    return { ms, cpuMs: procCpuMs(proc.pid) };
  } finally {
    await proc?.stop();
    await srv.cleanup();
  }
}

async function startOnly(): Promise<void> {
  const runs = new Map<Target['key'], Array<{ ms: number; cpuMs: number }>>(targets.map((t) => [t.key, []]));
  log(`${STARTS} empty-datastore starts of ${targets.map((t) => t.label).join(', ')}, taking turns`);
  // The 1-minute load average before each round: the machine is shared, so say how busy it was.
  const loads: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    loads.push(loadavg()[0] ?? 0);
    for (const t of targets) runs.get(t.key)?.push(await emptyStart(t, pgUrl));
  }
  const q = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)] ?? Number.NaN;
  const f = (n: number): string => (n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`);
  const table = [
    `| server, empty datastore (${STARTS} starts each) | start → Health/Check SERVING, median | p90 | server CPU until SERVING, median |`,
    '|---|--:|--:|--:|',
    ...targets.map((t) => {
      const r = runs.get(t.key) ?? [];
      return `| ${t.label} | ${f(
        q(
          r.map((x) => x.ms),
          0.5,
        ),
      )} | ${f(
        q(
          r.map((x) => x.ms),
          0.9,
        ),
      )} | ${f(
        q(
          r.map((x) => x.cpuMs),
          0.5,
        ),
      )} |`;
    }),
  ].join('\n');
  console.log(table);
  const md = `# Server start bench: ztwim vs SPIRE, empty datastore

Run: \`node --conditions=ztwim-source --import tsx bench/server.ts --start-only${STARTS === 15 ? '' : ` --starts ${STARTS}`}${flagValue('only') === undefined ? '' : ` --only ${flagValue('only')}`}\`
(${new Date().toISOString()}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}; total ${((performance.now() - started) / 1000).toFixed(0)} s;
1-minute load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} during the starts)

The empty-datastore start row of bench/server.ts on its own: each start is a new OS process from
the same SPIRE-style \`server.conf\` as the full bench (sqlite3 DataStore in a fresh temp dir, disk
KeyManager with a new \`keys.json\`, join_token NodeAttestor, \`log_level = "WARN"\`, CA key
ec-p256; no telemetry block on either side, so neither serves Prometheus metrics, as by
default), timed from spawn until grpc.health.v1.Health/Check on the admin socket answers SERVING
(polled every 10 ms, a new connection per try). The servers take turns, start after start. Server
CPU is the process's user + system time (/proc) when it first answered SERVING: less sensitive than
wall time to other load on the machine. SPIRE is \`spire-server\` ${SPIRE_VERSION}; ztwim runs
${FROM_SOURCE ? 'from source through tsx' : 'the built command (`packages/cli/bin/ztwim.js`, node flags of its first line), whose `server run` loads `dist/bundle/server-run.cjs` with the V8 code cache the first start of the run saves (docs/performance.md)'}.${altBin === undefined ? '' : ` The third row is another built \`ztwim\` (\`ZTWIM_BENCH_ALT_BIN\`), in the same turns.`}

${table}
`;
  const out = join(resultsDir(), 'server-start.md');
  writeFileSync(out, md);
  log(`wrote ${out}`);
}

if (!START_ONLY) serverloadBin = goBuild(join(REPO, 'bench', 'go'), './serverload');
const targets: Target[] = [];
if (ONLY.has('spire')) {
  let bin: string;
  try {
    bin = findSpireBinary('spire-server');
  } catch (e) {
    console.error(`bench/server.ts: ${(e as Error).message}`);
    console.error(
      `(SPIRE ${SPIRE_VERSION} is built by scripts/setup-interop.sh into ~/.cache/ztwim/spire-${SPIRE_VERSION}/bin; --only sqlite,pg runs without it)`,
    );
    process.exit(1);
  }
  targets.push({
    key: 'spire',
    label: `SPIRE ${SPIRE_VERSION} (SQLite)`,
    dataStore: sqliteDataStore,
    command: (conf) => ({ cmd: bin, args: ['run', '-config', conf] }),
  });
}
if (!FROM_SOURCE && (ONLY.has('sqlite') || ONLY.has('pg')) && !existsSync(join(REPO, 'packages/cli/dist/bundle/main.js'))) {
  console.error('bench/server.ts: packages/cli/dist/bundle is missing; run `npm run build` (or pass --source)');
  process.exit(1);
}
if (ONLY.has('sqlite')) {
  targets.push({
    key: 'sqlite',
    label: 'ztwim (SQLite)',
    dataStore: sqliteDataStore,
    command: ztwimCommand,
  });
}
// Another built `ztwim` (e.g. a copy of the tree before a change) as one more SQLite server, taking
// turns with the others: a before/after comparison under the same load.
const altBin = process.env['ZTWIM_BENCH_ALT_BIN'];
if (altBin !== undefined && ONLY.has('sqlite')) {
  targets.push({
    key: 'alt',
    label: `ztwim (SQLite), ${altBin}`,
    dataStore: sqliteDataStore,
    command: (conf) => ({ cmd: process.execPath, args: [...nodeArgs, altBin, 'server', 'run', '-config', conf] }),
  });
}
let pgUrl: string | undefined;
if (ONLY.has('pg')) {
  try {
    const out = execFileSync('bash', [join(REPO, 'scripts/pg-test-server.sh'), 'start'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600_000,
    });
    pgUrl = out.trim().split('\n').pop();
  } catch (e) {
    console.error(`bench/server.ts: scripts/pg-test-server.sh start failed: ${(e as { stderr?: string }).stderr ?? String(e)}`);
    process.exit(1);
  }
  targets.push({ key: 'pg', label: 'ztwim (PostgreSQL)', dataStore: () => '', command: ztwimCommand });
}

const started = performance.now();
if (START_ONLY) {
  await startOnly();
  process.exit(0);
}
const results = new Map<Target['key'], Result>();
/** The 1-minute load average as each server's turn began (the machine is shared). */
const loads: string[] = [];
for (const t of targets) {
  const t0 = performance.now();
  loads.push(`${t.label} ${loadavg()[0]?.toFixed(1) ?? '?'}`);
  results.set(t.key, await benchTarget(t, pgUrl));
  log(`${t.label}: done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

// ---------------------------------------------------------------------------------------------
// The table

type Dir = 'higher' | 'lower';
interface RowSpec {
  readonly name: string;
  /** A target row (the others are extra information). */
  readonly target: boolean;
  readonly dir: Dir;
  readonly get: (r: Result) => number | undefined;
  readonly fmt: (n: number) => string;
}
const perSec = (n: number, t: Timed | undefined): number | undefined => (t === undefined ? undefined : (n / t.ms) * 1000);
const fRate = (n: number): string => `${Math.round(n).toLocaleString('en-US')}/s`;
const fMs = (n: number): string => (n >= 100 ? `${Math.round(n).toLocaleString('en-US')} ms` : `${n.toFixed(1)} ms`);
const fMiB = (n: number): string => `${Math.round(n)} MiB`;
const owned = AGENT_OWNED;

const rowSpecs: RowSpec[] = [
  {
    name: `entry create, single (BatchCreateEntry × 1, ${k(SINGLES)} sequential calls)`,
    target: true,
    dir: 'higher',
    get: (r) => perSec(SINGLES, r.singles),
    fmt: fRate,
  },
  {
    name: `entry create, batched (${BATCH} per call, to ${k(CHECKPOINT)})`,
    target: true,
    dir: 'higher',
    get: (r) => perSec(CHECKPOINT - SINGLES - owned, r.batchTo10),
    fmt: fRate,
  },
  {
    name: `entry create, batched (${BATCH} per call, ${k(CHECKPOINT)} → ${k(TOTAL)})`,
    target: true,
    dir: 'higher',
    get: (r) => perSec(TOTAL - CHECKPOINT, r.batchTo100),
    fmt: fRate,
  },
  { name: `ListEntries, all ${k(CHECKPOINT)} (pages of ${PAGE}, median of ${LIST_RUNS})`, target: true, dir: 'lower', get: (r) => r.list10, fmt: fMs },
  { name: `ListEntries, all ${k(TOTAL)} (pages of ${PAGE}, median of ${LIST_RUNS})`, target: true, dir: 'lower', get: (r) => r.list100, fmt: fMs },
  { name: `server RSS at ${k(TOTAL)} entries, after the list`, target: true, dir: 'lower', get: (r) => r.rssAfterList, fmt: fMiB },
  { name: `server RSS at ${k(TOTAL)} entries, after the authorised-entry calls`, target: true, dir: 'lower', get: (r) => r.rssAfterAuth, fmt: fMiB },
  {
    name: `GetAuthorizedEntries, ${k(owned)} of ${k(TOTAL)} over mTLS, Go client (median of ${AUTH_CALLS})`,
    target: true,
    dir: 'lower',
    get: (r) => r.authGoMedian,
    fmt: fMs,
  },
  { name: `… the same, p99 of ${AUTH_CALLS}`, target: false, dir: 'lower', get: (r) => r.authGoP99, fmt: fMs },
  {
    name: `GetAuthorizedEntries, ${k(owned)} of ${k(TOTAL)} over mTLS, Node client (median of ${AUTH_CALLS})`,
    target: false,
    dir: 'lower',
    get: (r) => r.authMedian,
    fmt: fMs,
  },
  { name: 'GetAuthorizedEntries, first full answer after attestation', target: false, dir: 'lower', get: (r) => r.authFirst, fmt: fMs },
  { name: `start → Health/Check SERVING, ${k(TOTAL)} entries on disk`, target: true, dir: 'lower', get: (r) => r.startFull, fmt: fMs },
  { name: `start → first full GetAuthorizedEntries answer, ${k(TOTAL)} on disk`, target: false, dir: 'lower', get: (r) => r.startToAuth, fmt: fMs },
  { name: 'start → Health/Check SERVING, empty datastore', target: false, dir: 'lower', get: (r) => r.startEmpty, fmt: fMs },
];

const spire = results.get('spire');
const sqlite = results.get('sqlite');
const pgRes = results.get('pg');
const cell = (r: Result | undefined, s: RowSpec): string => {
  if (r === undefined) return 'not run';
  const v = s.get(r);
  return v === undefined ? 'failed' : s.fmt(v);
};
const verdict = (r: Result | undefined, s: RowSpec): string => {
  const a = spire === undefined ? undefined : s.get(spire);
  const b = r === undefined ? undefined : s.get(r);
  if (a === undefined || b === undefined) return '—';
  const ratio = s.dir === 'higher' ? b / a : a / b; // > 1 = ztwim better
  const ok = s.dir === 'higher' ? b >= a : b <= a;
  const x = ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(2);
  if (!s.target) return `info (${x}×)`;
  return `${ok ? 'yes' : '**no**'} (${x}×)`;
};
const spireHeader = `SPIRE ${SPIRE_VERSION}, SQLite`;
// ZTWIM_BENCH_ALT_BIN's server gets a column of its own (after the other SQLite one) and no verdict.
const alt = results.get('alt');
const altCell = (s: RowSpec): string => (alt === undefined ? '' : ` ${cell(alt, s)} |`);
const lines = [
  `| | ${spireHeader} | ztwim, SQLite |${alt === undefined ? '' : ' ztwim, SQLite, ZTWIM_BENCH_ALT_BIN |'} ztwim, PostgreSQL | target met? SQLite (PostgreSQL) |`,
  `|---|--:|--:|${alt === undefined ? '' : '--:|'}--:|---|`,
  ...rowSpecs.map(
    (s) => `| ${s.name} | ${cell(spire, s)} | ${cell(sqlite, s)} |${altCell(s)} ${cell(pgRes, s)} | ${verdict(sqlite, s)} (${verdict(pgRes, s)}) |`,
  ),
];
const table = lines.join('\n');

const pct = (x: number): string => `${Math.round(x * 100)}%`;
const cpuRow = (name: string, get: (r: Result) => Timed | undefined): string => {
  const c = (r: Result | undefined): string => {
    const t = r === undefined ? undefined : get(r);
    return t === undefined ? '—' : `${pct(t.clientCpu)} / ${pct(t.serverCpu)}`;
  };
  return `| ${name} | ${c(spire)} | ${c(sqlite)} | ${c(pgRes)} |`;
};
const cpuTable = [
  `| CPU share of the wall time, client / server | ${spireHeader} | ztwim, SQLite | ztwim, PostgreSQL |`,
  '|---|--:|--:|--:|',
  cpuRow('entry create, single', (r) => r.singles),
  cpuRow(`entry create, batched, ${k(CHECKPOINT)} → ${k(TOTAL)}`, (r) => r.batchTo100),
  cpuRow(`ListEntries, all ${k(TOTAL)}`, (r) => r.list100Detail),
  cpuRow('GetAuthorizedEntries, Node client', (r) => r.authDetail),
].join('\n');

const errors = [...results.entries()].filter(([, r]) => r.error !== undefined).map(([key, r]) => `- ${key}: ${r.error}`);
const version = (): string => {
  try {
    return execFileSync(findSpireBinary('spire-server'), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim() || SPIRE_VERSION;
  } catch (e) {
    return ((e as { stderr?: string }).stderr ?? '').trim() || SPIRE_VERSION;
  }
};
const md = `# Server bench: ztwim vs SPIRE

Run: \`node --conditions=ztwim-source --import tsx bench/server.ts${TOTAL === 100_000 ? '' : ` --entries ${TOTAL}`}\`
(${new Date().toISOString()}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}; total ${((performance.now() - started) / 1000).toFixed(0)} s;
1-minute load average as each server began: ${loads.join(', ')})

Each server is its own OS process started from the same SPIRE-style \`server.conf\` (sqlite3 or
postgres DataStore, disk KeyManager, join_token NodeAttestor, \`log_level = "WARN"\`; no telemetry
block on either side) in a fresh temp
dir, driven one after the other by the same sequential Node client (@ztwim/proto on connect-node):
admin API over the Unix socket, agent API over mTLS on TCP with the SVID from a join_token
AttestAgent. SPIRE is \`spire-server\` ${ONLY.has('spire') ? version() : SPIRE_VERSION} built with \`go install\` by
scripts/setup-interop.sh. ztwim runs ${FROM_SOURCE ? 'from source through tsx' : 'the built command (`packages/cli/bin/ztwim.js`, the bundle in `packages/cli/dist/bundle`)'}. PostgreSQL is the throwaway
cluster of \`scripts/pg-test-server.sh\` (fsync on) on the same machine. Target: ztwim with SQLite at least
SPIRE's rate and at most SPIRE's time and memory on every row (ratio > 1 = ztwim better).
Rate limits: no \`ratelimit\` block, so SPIRE's defaults on both servers (per caller IP: 1 attestation/s,
500 signings/s); no row here reaches them (admin calls go over the Unix socket, which is never limited;
the one attestation and the GetAuthorizedEntries calls are not limited).

${table}

The bench agent owns ${k(owned)} entries (${Math.round(owned * 0.6).toLocaleString('en-US')} direct children of its join_token ID, ${Math.round(owned * 0.4).toLocaleString('en-US')} grandchildren); the other
entries hang under 99 other agents. "First full answer" polls until all ${k(owned)} are returned (both
servers apply new entries to their in-memory entry index from the event log every 5 s, and on a
lookup ztwim also applies what is pending). The list and GetAuthorizedEntries rows are taken once
the server has been idle for 500 ms (catch-up after the bulk import and GC done), the same way for
every server. Rows marked "info" are extra rows, not rows of the target. Durability differs on the single-create row: SPIRE's SQLite runs WAL with go-sqlite3's
default \`synchronous=NORMAL\` (no fsync per commit), ztwim runs WAL with \`synchronous=FULL\`
(every acknowledged write is fsynced); a batched call is one transaction in ztwim (one fsync per
call) and one transaction per entry in SPIRE.

${cpuTable}
${errors.length === 0 ? '' : `\nFailures:\n${errors.join('\n')}\n`}`;
process.stdout.write(`${table}\n\n${cpuTable}\n`);
if (errors.length > 0) process.stdout.write(`\n${errors.join('\n')}\n`);
const outDir = resultsDir();
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'server.md'), md);
log(`wrote ${join(outDir, 'server.md')}`);
if (errors.length > 0) process.exitCode = 1;
