/**
 * The HA kill bench (issue #19): three servers on one PostgreSQL (a primary with a synchronous
 * streaming replica), three agents that can reach all three, workloads and admin clients in a
 * closed loop, and four events: `kill -9` one server; then a second; then both brought back; then
 * the PostgreSQL primary killed and its replica promoted. ztwim and SPIRE v1.13.0 in the same run,
 * one after the other, each on a fresh PostgreSQL pair of its own.
 *
 *   node --conditions=ztwim-source --import tsx bench/ha.ts [--only ztwim|spire] [--source]
 *        [--jwt-clients 8] [--x509-streams 2] [--creators 2] [--hold 30] [--warmup 15]
 *        [--x509-ttl 60] [--smoke]
 *
 * Topology, per side (every part its own OS process):
 *   - PostgreSQL 15 (Debian's): primary and synchronous streaming replica started by
 *     @ztwim/testkit/pg-replica on 127.0.0.1 (ZTWIM_PG_DIR, default /tmp/ztwim-pg-ha-bench; ports
 *     ZTWIM_PG_PORT and +1, default 25460/25461), database `ha_<side>`;
 *   - three servers (`ztwim.js server run` / `spire-server run`) bound to 127.0.0.1, .2 and .3 on
 *     one port (25490 ztwim, 25491 SPIRE), each its own disk KeyManager (own CA and JWT keys);
 *   - three agents (`ztwim.js agent run` / `spire-agent run`) whose `server_address` is the name
 *     `ha-servers.bench`, resolving to the three addresses: each agent runs in a mount namespace of
 *     its own (`unshare -m`) with a hosts file bound over /etc/hosts holding the three A records
 *     (what a DNS name with several A records, or a Kubernetes headless Service, gives). ztwim's
 *     agent resolves it with getaddrinfo and fails over between them; spire-agent dials
 *     `dns:///ha-servers.bench:port` with grpc-go's round_robin balancer, whose dns resolver reads
 *     /etc/hosts the same way (pkg/agent/client/dial.go);
 *   - the load: bench/go/agentload `ha` (grpc-go + go-spiffe v2 Workload API stubs, spire-api-sdk
 *     admin stubs), the same binary for both sides: per agent N clients fetching a JWT-SVID for a
 *     new audience per call (uncached: each one a NewJWTSVID on a server) and M FetchX509SVID
 *     streams (short X509-SVID TTL, so they rotate); K admin clients creating entries on the
 *     servers' admin sockets (moving to the next server when one fails); a probe per server
 *     (CountEntries, a datastore read, every 250 ms).
 *
 * Databases: ztwim's servers get libpq's multi-host form over the primary and the replica with
 * `target_session_attrs=read-write` (docs/ha.md). spire-server v1.13.0's `postgres` database type
 * opens its connection through jinzhu/gorm's postgres dialect, i.e. lib/pq v1.10.9
 * (pkg/server/datastore/sqlstore/postgres.go), which takes one host only; the bench tries the
 * multi-host string first and, when spire-server cannot start with it, gives it the primary's URL
 * and says so in the results (its servers then cannot follow the promotion).
 *
 * Writes bench/results/ha.md.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startPgPrimaryReplica, type PgPair } from '@ztwim/testkit/pg-replica';
import { goBuild, REPO_ROOT, spireAgentBin, spireServerBin, SPIRE_VERSION, ZTWIM_BIN, ztwimNodeFlags } from '../test/interop/lib/peers.ts';
import { accepts } from '../test/interop/lib/net.ts';
import { agentConf } from '../test/interop/lib/server-conf.ts';
import { runBinary } from '../test/interop/lib/spire-admin.ts';
import { ZTWIM_MAIN } from '../test/interop/lib/ztwim-oidc.ts';
import { flagValue, hasFlag, num } from './lib/args.ts';
import { BENCH_DIR, loadgenBin, requireSpireBinaries, serverCli, startProc, tmpDirs, waitUntil, type Proc, UID } from './lib/procs.ts';
import { resultsDir, runMain } from './lib/results-dir.ts';

const SMOKE = hasFlag('smoke');
const ONLY = flagValue('only') ?? (SMOKE ? 'ztwim' : undefined);
const SOURCE = hasFlag('source');
const JWT_CLIENTS = num('jwt-clients', SMOKE ? 2 : 8);
const X509_STREAMS = num('x509-streams', SMOKE ? 1 : 2);
const CREATORS = num('creators', SMOKE ? 1 : 2);
/** Seconds each event window lasts (from the event, or from the restarted servers serving). */
const HOLD_S = num('hold', SMOKE ? 1 : 30);
const WARMUP_S = num('warmup', SMOKE ? 0 : 15);
const X509_TTL_S = num('x509-ttl', 60);
/** Seconds between the primary's kill and `pg_ctl promote` (an operator's or Patroni's reaction). */
const PROMOTE_AFTER_S = SMOKE ? 0.2 : 2;
const TD = 'example.org';
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'] as const;
const SERVERS_NAME = 'ha-servers.bench';
const PG_DIR = process.env['ZTWIM_PG_DIR'] ?? '/tmp/ztwim-pg-ha-bench';
const PG_PORT = Number(process.env['ZTWIM_PG_PORT'] ?? 25460);
const SERVER_PORT: Record<Side, number> = { ztwim: 25490, spire: 25491 };
const execFileP = promisify(execFile);

type Side = 'ztwim' | 'spire';
type EventName = 'baseline' | 'kill1' | 'kill2' | 'restart' | 'pgfailover';
const EVENTS: readonly { key: EventName; label: string }[] = [
  { key: 'baseline', label: 'baseline (3 servers)' },
  { key: 'kill1', label: '`kill -9` of the busiest server (2 left)' },
  { key: 'kill2', label: '`kill -9` of the busier of the two left (1 left)' },
  { key: 'restart', label: 'both killed servers restarted' },
  { key: 'pgfailover', label: 'PostgreSQL primary killed, replica promoted' },
];

interface ServerProc {
  readonly index: number;
  readonly host: string;
  readonly dir: string;
  readonly conf: string;
  readonly adminSocket: string;
  proc: Proc | undefined;
}

interface WindowStats {
  jwtCalls: number;
  jwtErrors: Record<string, number>;
  jwtP99Ms: number;
  jwtMaxMs: number;
  x509Errors: Record<string, number>;
  x509Updates: number;
  /** Longest time a stream held an expired X509-SVID (ms), 0 if never. */
  x509ExpiredMs: number;
  creates: number;
  createsAcked: number;
  createErrors: Record<string, number>;
  /** Seconds from the event until every server answered a probe (restart, fail-over), or null. */
  servingAfterS: number | null;
  servingNote: string;
  /** 1-min load average at the window's end. */
  loadAvg: number;
  seconds: number;
}

interface SideResult {
  side: Side;
  connectionNote: string;
  windows: Record<EventName, WindowStats>;
  acked: number;
  present: number;
  lost: number;
  loadMin: number;
  loadMax: number;
  /** Per event, kind and code: how many, and the first message. */
  errorSamples: string[];
  /** Which servers were killed, and the agents' connections to each server just before. */
  victimNotes: string[];
}

const load1 = (): number => loadavg()[0] ?? NaN;
const loadSamples: number[] = [];
setInterval(() => loadSamples.push(load1()), 5000).unref();

/** A temp dir removed at exit. */
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.add(d);
  return d;
}

function serverConfText(side: Side, s: { host: string; port: number; dir: string; adminSocket: string }, connectionString: string): string {
  const keys = join(s.dir, 'keys.json');
  return `server {
  bind_address = "${s.host}"
  bind_port = "${s.port}"
  socket_path = "${s.adminSocket}"
  trust_domain = "${TD}"
  data_dir = "${join(s.dir, 'data')}"
  log_level = "WARN"
  ca_key_type = "ec-p256"
  jwt_key_type = "ec-p256"
  ca_ttl = "24h"
  default_x509_svid_ttl = "${X509_TTL_S}s"
  default_jwt_svid_ttl = "5m"
  ratelimit {
    attestation = true
    signing = false
  }
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "postgres"
      connection_string = "${connectionString}"
    }
  }
  KeyManager "disk" {
    plugin_data {
      keys_path = "${keys}"
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
# ${side}
`;
}

/** The command line of a ztwim daemon: the built CLI (`bin/ztwim.js`), or its sources through tsx. */
function ztwimArgv(args: readonly string[]): string[] {
  return SOURCE ? ['--conditions=ztwim-source', '--import', 'tsx', ZTWIM_MAIN, ...args] : [...ztwimNodeFlags(), ZTWIM_BIN, ...args];
}

/** An admin call that needs the datastore (`entry count` through spire-server's CLI, which speaks to both). */
async function serves(adminSocket: string): Promise<boolean> {
  if (!existsSync(adminSocket)) return false;
  return (await runBinary(spireServerBin(), ['entry', 'count', '-socketPath', adminSocket], { timeoutMs: 5000 })).status === 0;
}

function startServer(side: Side, s: ServerProc): Proc {
  const name = `${side}-server-${s.index + 1}`;
  s.proc =
    side === 'spire'
      ? startProc(name, spireServerBin(), ['run', '-config', s.conf], s.dir)
      : startProc(name, process.execPath, ztwimArgv(['server', 'run', '-config', s.conf]), REPO_ROOT);
  return s.proc;
}

async function waitServing(s: ServerProc, timeoutMs = 180_000): Promise<void> {
  const p = s.proc;
  if (p === undefined) throw new Error(`server ${s.index + 1} not started`);
  await waitUntil(`server ${s.index + 1} (${s.host}) serving`, p, () => serves(s.adminSocket), timeoutMs);
}

function kill9(s: ServerProc): Promise<void> {
  const p = s.proc;
  if (p === undefined || p.exited()) return Promise.resolve();
  return new Promise((resolve) => {
    p.child.once('exit', () => resolve());
    p.child.kill('SIGKILL');
  });
}

async function psql(port: number, db: string, sql: string): Promise<string> {
  const { stdout } = await execFileP('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-tAc', sql], { encoding: 'utf8' });
  return stdout;
}

async function checkPortsFree(port: number): Promise<void> {
  for (const h of HOSTS) if (await accepts(h, port)) throw new Error(`${h}:${port} is in use; the bench needs it for its servers`);
}

// ---------------------------------------------------------------------------------------------
// Records of the load generator, cut into event windows.

interface Records {
  jwt: { t: number; ms: number; code: string; msg: string }[];
  x509: { t: number; stream: string; kind: 'upd' | 'err'; v: string; msg: string }[];
  creates: { t: number; ms: number; code: string; server: number; id: string; msg: string }[];
  probes: { t: number; server: number; code: string }[];
}

function parseRecords(text: string): Records {
  const r: Records = { jwt: [], x509: [], creates: [], probes: [] };
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    switch (f[0]) {
      case 'J':
        r.jwt.push({ t: Number(f[1]), ms: Number(f[2]), code: f[3] ?? '?', msg: f.slice(4).join(' ') });
        break;
      case 'X':
        r.x509.push({ t: Number(f[1]), stream: f[2] ?? '?', kind: f[3] === 'upd' ? 'upd' : 'err', v: f[4] ?? '', msg: f.slice(5).join(' ') });
        break;
      case 'C':
        r.creates.push({ t: Number(f[1]), ms: Number(f[2]), code: f[3] ?? '?', server: Number(f[4]), id: f[5] ?? '-', msg: f.slice(6).join(' ') });
        break;
      case 'P':
        r.probes.push({ t: Number(f[1]), server: Number(f[2]), code: f[3] ?? '?' });
        break;
      default:
    }
  }
  return r;
}

function p99(ms: number[]): number {
  if (ms.length === 0) return NaN;
  const s = [...ms].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(0.99 * s.length) - 1))] ?? NaN;
}

function countBy(codes: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of codes) out[c] = (out[c] ?? 0) + 1;
  return out;
}

/**
 * Seconds from `from` until each of `servers` answered a probe started at or after `from`, the
 * largest of them; null if one never did before `until`.
 */
function servingAfter(r: Records, servers: readonly number[], from: number, until: number): number | null {
  let worst = 0;
  for (const s of servers) {
    const ok = r.probes.find((p) => p.server === s && p.t >= from && p.t < until && p.code === 'OK');
    if (ok === undefined) return null;
    worst = Math.max(worst, ok.t - from);
  }
  return worst / 1000;
}

/** The longest time any stream held an expired X509-SVID within [from, to) (ms). */
function expiredMs(r: Records, from: number, to: number): number {
  const byStream = new Map<string, { t: number; notAfter: number }[]>();
  for (const x of r.x509) {
    if (x.kind !== 'upd') continue;
    const l = byStream.get(x.stream) ?? [];
    l.push({ t: x.t, notAfter: Number(x.v) });
    byStream.set(x.stream, l);
  }
  let worst = 0;
  for (const ups of byStream.values()) {
    for (let i = 0; i < ups.length; i++) {
      const cur = ups[i]!;
      const next = ups[i + 1]?.t ?? to;
      // Expired from notAfter until the next update, clipped to the window.
      const a = Math.max(cur.notAfter, from);
      const b = Math.min(next, to);
      if (b > a) worst = Math.max(worst, b - a);
    }
  }
  return worst;
}

function windowStats(
  r: Records,
  from: number,
  to: number,
  loadAvg: number,
  serving: { servers: readonly number[]; from: number; note: string } | null,
): WindowStats {
  // A call belongs to the window in which it ended (where its caller saw the answer or the error).
  const jwt = r.jwt.filter((j) => j.t + j.ms >= from && j.t + j.ms < to);
  const x = r.x509.filter((e) => e.t >= from && e.t < to);
  const c = r.creates.filter((e) => e.t + e.ms >= from && e.t + e.ms < to);
  return {
    jwtCalls: jwt.length,
    jwtErrors: countBy(jwt.filter((j) => j.code !== 'OK').map((j) => j.code)),
    jwtP99Ms: p99(jwt.filter((j) => j.code === 'OK').map((j) => j.ms)),
    jwtMaxMs: Math.max(0, ...jwt.map((j) => j.ms)),
    x509Errors: countBy(x.filter((e) => e.kind === 'err').map((e) => e.v)),
    x509Updates: x.filter((e) => e.kind === 'upd').length,
    x509ExpiredMs: expiredMs(r, from, to),
    creates: c.length,
    createsAcked: c.filter((e) => e.code === 'OK').length,
    createErrors: countBy(c.filter((e) => e.code !== 'OK').map((e) => e.code)),
    servingAfterS: serving === null ? null : servingAfter(r, serving.servers, serving.from, to),
    servingNote: serving?.note ?? '',
    loadAvg,
    seconds: (to - from) / 1000,
  };
}

/**
 * Established TCP connections to `port` per server address (127.0.0.x), from /proc/net/tcp: the
 * agents' connections (the load generator talks to the servers over their Unix sockets).
 */
function agentConnections(port: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const [remote, state] = [f[2], f[3]];
    if (remote === undefined || state !== '01') continue; // 01: ESTABLISHED
    const [ipHex, portHex] = remote.split(':');
    if (ipHex === undefined || Number.parseInt(portHex ?? '', 16) !== port) continue;
    // IPv4 in host byte order (little-endian here): 0100007F is 127.0.0.1.
    const ip = [3, 2, 1, 0].map((i) => Number.parseInt(ipHex.slice(2 * i, 2 * i + 2), 16)).join('.');
    out.set(ip, (out.get(ip) ?? 0) + 1);
  }
  return out;
}

/** A log line of an agent, shortened: ztwim's JSON (time, message and the error's message), spire-agent's text as it is. */
function agentLogText(line: string): string {
  try {
    const j = JSON.parse(line) as { time?: string; msg?: string; err?: { message?: string } };
    return `${j.time ?? ''} ${j.msg ?? ''}: ${j.err?.message ?? ''}`;
  } catch {
    return line;
  }
}

// ---------------------------------------------------------------------------------------------
// One side: PostgreSQL pair, servers, agents, load, events, count.

async function runSide(side: Side): Promise<SideResult> {
  const log = (m: string): void => console.log(`[${side} ${new Date().toISOString().slice(11, 19)} load ${load1().toFixed(1)}] ${m}`);
  const port = SERVER_PORT[side];
  await checkPortsFree(port);
  const db = `ha_${side}`;
  log('starting PostgreSQL primary + synchronous replica');
  const pg: PgPair = await startPgPrimaryReplica({ dir: PG_DIR, primaryPort: PG_PORT, replicaPort: PG_PORT + 1, database: db });
  const root = tempDir(`ztwim-ha-bench-${side}-`);
  const procs: Proc[] = [];
  try {
    const servers: ServerProc[] = HOSTS.map((host, index) => {
      const dir = join(root, `server-${index + 1}`);
      mkdirSync(join(dir, 'data'), { recursive: true });
      return { index, host, dir, conf: join(dir, 'server.conf'), adminSocket: join(dir, 'admin.sock'), proc: undefined };
    });
    let connectionNote = `libpq multi-host \`${pg.multiHostConnectionString}\``;
    const write = (cs: string): void => {
      for (const s of servers) writeFileSync(s.conf, serverConfText(side, { host: s.host, port, dir: s.dir, adminSocket: s.adminSocket }, cs));
    };
    write(pg.multiHostConnectionString);
    // The first server creates the schema alone; the others join it.
    log('starting server 1');
    const first = servers[0]!;
    startServer(side, first);
    try {
      await waitServing(first, side === 'spire' ? 60_000 : 180_000);
    } catch (e) {
      if (side !== 'spire') throw e;
      const out = first.proc?.output() ?? '';
      await first.proc?.stop();
      const why = /Fatal run error" error="([^"]{0,200})"/.exec(out)?.[1] ?? String(e).slice(0, 200);
      log(`spire-server did not start with the multi-host connection string: ${why}`);
      connectionNote = `the primary only, \`${pg.primaryUrl}\`: spire-server ${SPIRE_VERSION} does not start with the multi-host string (\`${why}\`: lib/pq takes one host), so its servers cannot follow the promotion`;
      write(pg.primaryUrl);
      startServer(side, first);
      await waitServing(first);
    }
    log('starting servers 2 and 3');
    for (const s of servers.slice(1)) startServer(side, s);
    for (const s of servers.slice(1)) await waitServing(s);
    for (const s of servers) procs.push(s.proc!);

    // Every server's CA in the stored bundle before the agents take it as their trust bundle.
    const bundle = join(root, 'bundle.pem');
    await waitUntil('three CAs in the bundle', first.proc!, async () => {
      const pem = await serverCli(['bundle', 'show'], first.adminSocket);
      writeFileSync(bundle, pem);
      return (pem.match(/BEGIN CERTIFICATE/g) ?? []).length >= 3;
    });

    const hostsFile = join(root, 'hosts');
    writeFileSync(hostsFile, `127.0.0.1 localhost\n${HOSTS.map((h) => `${h} ${SERVERS_NAME}`).join('\n')}\n`);
    const agentSockets: string[] = [];
    const agents: Proc[] = [];
    const victimNotes: string[] = [];
    log('starting three agents');
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `agent-${i + 1}`);
      mkdirSync(join(dir, 'data'), { recursive: true });
      const s = servers[i]!;
      const tokenOut = await serverCli(['token', 'generate', '-ttl', '3600'], s.adminSocket);
      const token = /Token:\s*(\S+)/.exec(tokenOut)?.[1];
      if (token === undefined) throw new Error(`no join token in: ${tokenOut}`);
      const agentId = `spiffe://${TD}/spire/agent/join_token/${token}`;
      await serverCli(
        [
          'entry',
          'create',
          '-parentID',
          agentId,
          '-spiffeID',
          `spiffe://${TD}/ha/workload-${i + 1}`,
          '-selector',
          `unix:uid:${UID}`,
          '-x509SVIDTTL',
          String(X509_TTL_S),
        ],
        s.adminSocket,
      );
      const socket = join(dir, 'api.sock');
      const conf = join(dir, 'agent.conf');
      writeFileSync(
        conf,
        agentConf({
          serverAddress: SERVERS_NAME,
          serverPort: port,
          trustDomain: TD,
          dataDir: join(dir, 'data'),
          socketPath: socket,
          logLevel: 'WARN',
          joinToken: token,
          trustBundlePath: bundle,
          keyManager: 'memory',
          syncInterval: null,
        }),
      );
      const [cmd, ...argv] = side === 'spire' ? [spireAgentBin(), 'run', '-config', conf] : [process.execPath, ...ztwimArgv(['agent', 'run', '-config', conf])];
      // Its own mount namespace, the hosts file naming the three servers bound over /etc/hosts; exec keeps the pid.
      const agent = startProc(
        `${side}-agent-${i + 1}`,
        'unshare',
        ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hostsFile, cmd!, ...argv],
        side === 'spire' ? dir : REPO_ROOT,
      );
      procs.push(agent);
      agents.push(agent);
      agentSockets.push(socket);
    }
    const loadgenWait = (socket: string, id: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const p = startProc('agentload wait', loadgenBin.path, ['wait', '-socket', socket, '-spiffe-id', id, '-timeout', '180s'], BENCH_DIR);
        p.child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`agentload wait ${id}: ${p.output().slice(-2000)}`))));
      });
    await Promise.all(agentSockets.map((s, i) => loadgenWait(s, `spiffe://${TD}/ha/workload-${i + 1}`)));
    log('agents serve their workloads; starting the load');

    const recFile = join(root, 'records.txt');
    const gen = startProc(
      'agentload ha',
      loadgenBin.path,
      [
        'ha',
        '-sockets',
        agentSockets.join(','),
        '-jwt-clients',
        String(JWT_CLIENTS),
        '-x509-streams',
        String(X509_STREAMS),
        '-admin',
        servers.map((s) => s.adminSocket).join(','),
        '-creators',
        String(CREATORS),
        '-parent',
        `spiffe://${TD}/ha/nobody`,
        '-out',
        recFile,
      ],
      BENCH_DIR,
    );
    await waitUntil('load running', gen, () => gen.output().includes('"started":true'), 120_000);
    await delay(WARMUP_S * 1000);

    const t: Record<EventName | 'end', number> = { baseline: 0, kill1: 0, kill2: 0, restart: 0, pgfailover: 0, end: 0 };
    let restartServing = 0;
    let promoteAt = 0;
    // (restartServing: when the bench saw both restarted servers serve; the window's figure comes from the probes.)
    t.baseline = Date.now();
    log('baseline');
    await delay(HOLD_S * 1000);
    const loadAtEnd = {} as Record<EventName, number>;
    loadAtEnd.baseline = load1();
    // The server the agents use most is killed first, then the busier of the other two: for
    // ztwim's agents (one connection each, to one server) that is where the agents are; spire-agent
    // (round_robin) holds a connection to every server.
    const victims: ServerProc[] = [];
    for (const key of ['kill1', 'kill2'] as const) {
      t[key] = Date.now();
      const conns = agentConnections(port);
      const alive = servers.filter((s) => !victims.includes(s));
      const v = alive.reduce((a, b) => ((conns.get(b.host) ?? 0) > (conns.get(a.host) ?? 0) ? b : a));
      victimNotes.push(`server ${v.index + 1} (${v.host}; agent connections per server before: ${servers.map((s) => conns.get(s.host) ?? 0).join('/')})`);
      victims.push(v);
      log(`kill -9 server ${v.index + 1}`);
      await kill9(v);
      await delay(HOLD_S * 1000);
      loadAtEnd[key] = load1();
    }
    t.restart = Date.now();
    log('restarting the two killed servers');
    for (const s of victims) procs.push(startServer(side, s));
    await Promise.all(victims.map((s) => waitServing(s)));
    restartServing = Date.now();
    log(`the two killed servers serve again after ${((restartServing - t.restart) / 1000).toFixed(1)} s`);
    await delay(HOLD_S * 1000);
    loadAtEnd.restart = load1();
    t.pgfailover = Date.now();
    log('killing the PostgreSQL primary');
    await pg.killPrimary();
    await delay(PROMOTE_AFTER_S * 1000);
    await pg.promoteReplica();
    promoteAt = Date.now();
    log(`replica promoted ${((promoteAt - t.pgfailover) / 1000).toFixed(1)} s after the kill`);
    await delay(HOLD_S * 1000);
    loadAtEnd.pgfailover = load1();
    t.end = Date.now();
    log('stopping the load');
    const genDone = new Promise<void>((resolve) => gen.child.once('exit', () => resolve()));
    gen.child.kill('SIGTERM');
    await genDone;
    const summary = gen
      .output()
      .trim()
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('{') && !l.includes('"started"'));
    if (summary === undefined) throw new Error(`agentload ha printed no summary:\n${gen.output().slice(-4000)}`);

    const rec = parseRecords(readFileSync(recFile, 'utf8'));
    const next: Record<EventName, number> = { baseline: t.kill1, kill1: t.kill2, kill2: t.restart, restart: t.pgfailover, pgfailover: t.end };
    const windows = {} as Record<EventName, WindowStats>;
    for (const { key } of EVENTS) {
      const serving =
        key === 'restart'
          ? { servers: victims.map((v) => v.index), from: t.restart, note: 'from the restart' }
          : key === 'pgfailover'
            ? { servers: [0, 1, 2], from: promoteAt, note: `from the promotion (${((promoteAt - t.pgfailover) / 1000).toFixed(1)} s after the kill)` }
            : null;
      windows[key] = windowStats(rec, t[key], next[key], loadAtEnd[key], serving);
    }

    const errorSamples: string[] = [];
    for (const { key, label } of EVENTS) {
      const inWin = (x: { t: number; ms?: number }): boolean => x.t + (x.ms ?? 0) >= t[key] && x.t + (x.ms ?? 0) < next[key];
      const groups = new Map<string, { n: number; msg: string }>();
      const add = (what: string, msg: string): void => {
        const g = groups.get(what) ?? { n: 0, msg };
        g.n++;
        groups.set(what, g);
      };
      for (const j of rec.jwt.filter(inWin)) if (j.code !== 'OK') add(`JWT-SVID ${j.code}`, j.msg);
      for (const x of rec.x509.filter(inWin)) if (x.kind === 'err') add(`X509 stream ${x.v}`, x.msg);
      for (const c of rec.creates.filter(inWin)) if (c.code !== 'OK') add(`entry create ${c.code} (server ${c.server + 1})`, c.msg);
      for (const [what, g] of groups) errorSamples.push(`${label}: ${g.n} × ${what}: "${g.msg.slice(0, 240)}"`);
    }

    // What the agents logged for the JWT-SVIDs they could not fetch (the cause behind a workload's
    // error): ztwim's `could not fetch jwt-svid`, spire-agent's `Could not fetch JWT-SVID`. The
    // output kept of a process is its last 100-200 kB, so the count is of those lines only.
    for (const a of agents) {
      const lines = a
        .output()
        .split('\n')
        .slice(1)
        .filter((l) => /could not fetch jwt-svid/i.test(l));
      const last = lines.at(-1);
      if (last !== undefined)
        errorSamples.push(`${a.name} logged "could not fetch JWT-SVID" ${lines.length} ×, the last: \`${agentLogText(last).slice(0, 400)}\``);
    }

    // Entries: acknowledged creates vs rows in the promoted database.
    const ackedIds = rec.creates.filter((c) => c.code === 'OK').map((c) => c.id);
    const rows = new Set((await psql(PG_PORT + 1, db, 'SELECT entry_id FROM registered_entries')).split('\n').filter((l) => l !== ''));
    const missing = ackedIds.filter((id) => !rows.has(id));
    if (missing.length > 0) log(`acknowledged entries not in the database: ${missing.slice(0, 10).join(', ')}`);
    const sideLoads = [...loadSamples, ...Object.values(loadAtEnd)];
    return {
      side,
      connectionNote,
      windows,
      acked: ackedIds.length,
      present: ackedIds.length - missing.length,
      lost: missing.length,
      loadMin: Math.min(...sideLoads),
      loadMax: Math.max(...sideLoads),
      errorSamples,
      victimNotes,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await pg.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const fmtCodes = (c: Record<string, number>): string => {
  const e = Object.entries(c);
  return e.length === 0 ? '0' : e.map(([k, v]) => `${v} ${k}`).join(', ');
};
const sum = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');

function report(results: readonly SideResult[], started: Date): string {
  const cols = results.map((r) => (r.side === 'ztwim' ? 'ztwim' : `SPIRE ${SPIRE_VERSION}`));
  const head = `| event | metric | ${cols.join(' | ')} |\n| --- | --- | ${cols.map(() => '---').join(' | ')} |`;
  const rows: string[] = [];
  for (const { key, label } of EVENTS) {
    const cell = (f: (w: WindowStats) => string): string => results.map((r) => f(r.windows[key])).join(' | ');
    rows.push(`| ${label} | JWT-SVID calls (errors by code) | ${cell((w) => `${w.jwtCalls} (${fmtCodes(w.jwtErrors)})`)} |`);
    rows.push(`| | JWT-SVID p99 / max ms | ${cell((w) => `${f1(w.jwtP99Ms)} / ${f1(w.jwtMaxMs)}`)} |`);
    rows.push(
      `| | X509-SVID updates (stream errors by code; longest expired) | ${cell((w) => `${w.x509Updates} (${fmtCodes(w.x509Errors)}; ${(w.x509ExpiredMs / 1000).toFixed(1)} s)`)} |`,
    );
    rows.push(`| | entry creates acknowledged / tried (errors by code) | ${cell((w) => `${w.createsAcked} / ${w.creates} (${fmtCodes(w.createErrors)})`)} |`);
    if (key === 'restart' || key === 'pgfailover') {
      rows.push(
        `| | every server serving again after (admin CountEntries per server) | ${cell((w) => (w.servingAfterS === null ? `not within ${f1(w.seconds)} s` : `${w.servingAfterS.toFixed(1)} s ${w.servingNote}`))} |`,
      );
    }
    rows.push(`| | window (s), 1-min load average | ${cell((w) => `${f1(w.seconds)}, ${f1(w.loadAvg)}`)} |`);
  }
  rows.push(`| **end** | entries acknowledged / in the database / lost | ${results.map((r) => `${r.acked} / ${r.present} / **${r.lost}**`).join(' | ')} |`);
  const errsWhileOneLives = results.map((r) => {
    const n = (['baseline', 'kill1', 'kill2', 'restart'] as const).reduce((a, k) => a + sum(r.windows[k].jwtErrors) + sum(r.windows[k].x509Errors), 0);
    return `${r.side === 'ztwim' ? 'ztwim' : 'SPIRE'}: ${n}`;
  });
  return [
    '# HA kill bench: three servers on one PostgreSQL, `kill -9`, restart, PostgreSQL fail-over',
    '',
    `Written by \`bench/ha.ts\` (issue #19) on ${started.toISOString().slice(0, 16)} UTC, ${cpus().length} cores, 1-min load average ${results.map((r) => `${r.side} ${f1(r.loadMin)}–${f1(r.loadMax)}`).join(', ')} over the run${SMOKE ? ' (**smoke run**: tiny sizes, figures meaningless)' : ''}.`,
    '',
    '## Settings',
    '',
    `- Per side, one after the other (ztwim, then SPIRE ${SPIRE_VERSION}): PostgreSQL 15 (Debian) primary + synchronous streaming replica (\`@ztwim/testkit/pg-replica\`), three servers on 127.0.0.1/.2/.3 (one port), each its own disk KeyManager (own CA and JWT keys), three agents whose \`server_address\` is one name with the three A records (a hosts file bound over /etc/hosts in each agent's mount namespace), every one its own OS process. ztwim's daemons run ${SOURCE ? 'from the TypeScript sources (tsx)' : 'the built CLI (`packages/cli/bin/ztwim.js`)'}.`,
    `- Load (bench/go/agentload \`ha\`, the same binary for both): per agent ${JWT_CLIENTS} closed-loop clients fetching a JWT-SVID for a new audience per call (${3 * JWT_CLIENTS} in all; uncached, each one a \`NewJWTSVID\` to a server; 30 s deadline; a failed call waits 100 ms before the next) and ${X509_STREAMS} FetchX509SVID streams (${3 * X509_STREAMS} in all; reopened when they break). Issue #19 asks for 300 workloads; ${3 * (JWT_CLIENTS + X509_STREAMS)} is what the shared 2-core machine holds beside both sides' 3 servers, 3 agents and 2 PostgreSQL.`,
    `- ${CREATORS} admin clients creating entries one at a time (100 ms pause) on the servers' admin sockets, moving to the next server when one fails; the entries' parent is no agent, so nothing mints for them. Lost = acknowledged creates not in \`registered_entries\` of the promoted database at the end.`,
    `- TTLs: X509-SVID ${X509_TTL_S} s (the workload entries' \`x509_svid_ttl\` and the servers' default: both agents renew at half of it), JWT-SVID 5 min, CA 24 h. Rate limits: \`ratelimit { attestation = true, signing = false }\` on both (SPIRE's per-IP signing limit off: all agents share 127.0.0.1). Agents: defaults (sync 5 s; ztwim keepalive 10 s + 5 s, rebalancing 2 min; spire-agent no keepalive, round_robin).`,
    `- Events, ${HOLD_S} s apart after ${WARMUP_S} s of warm-up: \`kill -9\` of the server with the most agent connections (from /proc/net/tcp: where ztwim's agents are; spire-agent's round_robin holds one to each); \`kill -9\` of the busier of the other two; both restarted (the window starts at the restart; the next event ${HOLD_S} s after both serve); the PostgreSQL primary SIGKILLed and the replica promoted (\`pg_ctl promote\`) ${PROMOTE_AFTER_S} s later. A window holds the calls that *ended* in it (their callers saw the answer or the error then). p99 is over the successful calls. "Longest expired": the longest time a stream's newest X509-SVID was past its NotAfter.`,
    ...results.map((r) => `- ${r.side === 'ztwim' ? 'ztwim' : `SPIRE ${SPIRE_VERSION}`} servers' \`connection_string\`: ${r.connectionNote}.`),
    ...results.map((r) => `- ${r.side === 'ztwim' ? 'ztwim' : `SPIRE ${SPIRE_VERSION}`}: killed ${r.victimNotes.join(', then ')}.`),
    '',
    '## Results',
    '',
    head,
    ...rows,
    '',
    `Workload-visible errors (JWT-SVID calls + X509 stream breaks) while at least one server lived and the database was up: ${errsWhileOneLives.join(', ')} (target 0).`,
    '',
    '### Errors seen (count, kind, gRPC code, first message)',
    '',
    ...results.flatMap((r) => [
      `${r.side === 'ztwim' ? 'ztwim' : `SPIRE ${SPIRE_VERSION}`}:`,
      '',
      ...(r.errorSamples.length === 0 ? ['- none'] : r.errorSamples.map((e) => `- ${e}`)),
      '',
    ]),
  ].join('\n');
}

async function main(): Promise<void> {
  requireSpireBinaries('ha');
  loadgenBin.path = goBuild(join(BENCH_DIR, 'go'), './agentload');
  const started = new Date();
  const sides: Side[] = ONLY === 'ztwim' ? ['ztwim'] : ONLY === 'spire' ? ['spire'] : ['ztwim', 'spire'];
  const results: SideResult[] = [];
  for (const side of sides) {
    loadSamples.length = 0;
    loadSamples.push(load1());
    results.push(await runSide(side));
  }
  const md = report(results, started);
  const out = join(resultsDir(), 'ha.md');
  writeFileSync(out, md);
  console.log(md);
  console.log(`written to ${out}`);
}

runMain(main);
