// Processes for the agent benches (bench/agent.ts, bench/agent-sync.ts): spawning and tearing
// down servers, agents and the Go load generator, waiting on them, their CPU use.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { liveProcs, runBinary, startProc as startHarnessProc, waitReady, freePort, type Proc } from '@ztwim/testkit/procs';
import { PeerMissingError, REPO_ROOT, spireAgentBin, spireServerBin, ZTWIM_BIN, ztwimNodeFlags } from '../../test/interop/lib/peers.ts';
import { agentConf, serverConf } from '../../test/interop/lib/server-conf.ts';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
/** Which side a bench process runs: SPIRE's binary or ztwim's. */
export type Impl = 'spire' | 'ztwim';
/** The uid the benches' workloads run as (their entries' `unix:uid` selector). */
export const UID = process.getuid?.() ?? 0;

// ---------------------------------------------------------------------------------------------
// Processes (@ztwim/testkit/procs, the harness the interop tests use too) and temp dirs: everything
// is torn down on any exit path.

export type { Proc };
/** The running processes (SIGKILLed when the bench exits). */
export const live = liveProcs;
/** Temp dirs removed when the bench exits. */
export const tmpDirs = new Set<string>();

process.on('exit', () => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

/**
 * Starts `cmd argv` in `cwd`, its output kept (the last 100-200 kB) and, with
 * ZTWIM_BENCH_PROC_LOG_DIR=DIR, also appended to DIR/<name>.log (experiments).
 */
export function startProc(name: string, cmd: string, argv: readonly string[], cwd: string): Proc {
  const logDir = process.env['ZTWIM_BENCH_PROC_LOG_DIR'];
  return startHarnessProc(name, cmd, argv, { cwd, maxOutputChars: 200_000, stopGraceMs: 8000, ...(logDir === undefined ? {} : { logDir }) });
}

/** Polls `cond` every 150 ms until it holds; fails at once if `proc` exits, and after `timeoutMs`. */
export async function waitUntil(what: string, proc: Proc, cond: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  await waitReady(what, proc, cond, { timeoutMs, intervalMs: 150 });
}

export function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** Waits until the process uses < 5% of a core over one second (start-up minting done). */
export async function settle(p: Proc, maxMs = 45_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let prev = cpuTicks(p.pid);
  while (Date.now() < deadline) {
    await delay(1000);
    const cur = cpuTicks(p.pid);
    if (cur - prev <= 5) return;
    prev = cur;
  }
}

// ---------------------------------------------------------------------------------------------
// The Go load generator.

/** The built bench/go/agentload binary (set once by the bench's main). */
export const loadgenBin = { path: '' };

export async function loadgen<T>(sub: string, argv: readonly string[], timeoutMs: number): Promise<T> {
  const p = startProc(`agentload ${sub}`, loadgenBin.path, [sub, ...argv], BENCH_DIR);
  const t = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => p.child.once('exit', (c) => resolve(c)));
  clearTimeout(t);
  live.delete(p);
  const out = p.output();
  if (code !== 0) throw new Error(`agentload ${sub} failed (exit ${String(code)}):\n${out.slice(-4000)}`);
  const line = out
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`agentload ${sub} printed no JSON:\n${out}`);
  return JSON.parse(line) as T;
}

export function nodeArgs(kind: 'server' | 'agent', profDir: string | undefined, source: boolean): string[] {
  // The node flags `ztwim` itself runs with (its shebang); the processes run in their temp dirs,
  // so tsx is named by its resolved URL.
  const a = [...ztwimNodeFlags(), ...(source ? ['--conditions=ztwim-source', '--import', import.meta.resolve('tsx')] : [])];
  // Extra node flags for the ztwim processes (experiments), e.g. ZTWIM_BENCH_NODE_ARGS="--trace-gc";
  // ZTWIM_BENCH_AGENT_NODE_ARGS / ZTWIM_BENCH_SERVER_NODE_ARGS for one of them only.
  const extra = `${process.env['ZTWIM_BENCH_NODE_ARGS'] ?? ''} ${process.env[`ZTWIM_BENCH_${kind.toUpperCase()}_NODE_ARGS`] ?? ''}`;
  a.push(...extra.split(' ').filter((x) => x !== ''));
  if (profDir !== undefined) a.push('--cpu-prof', '--cpu-prof-dir', profDir);
  return [...a, join(BENCH_DIR, 'agent-proc.mjs')];
}

/** A server CLI command (`spire-server <argv>`, or the same through `ztwim server`) against the admin socket. */
export async function serverCli(argv: readonly string[], socket: string, impl: Impl = 'spire'): Promise<string> {
  const [cmd, pre] = impl === 'spire' ? [spireServerBin(), []] : [process.execPath, [ZTWIM_BIN, 'server']];
  const r = await runBinary(cmd, [...pre, ...argv, '-socketPath', socket]);
  if (r.status !== 0) throw new Error(`${impl} server ${argv.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * Fails unless each package's dist/ was built after its newest source (plain-node mode). As
 * `tsc -b`, compares with dist/.tsbuildinfo: tsc leaves unchanged outputs untouched.
 */
export function checkDistFresh(): void {
  const stale: string[] = [];
  for (const pkg of ['spiffe', 'core', 'proto', 'peercred', 'server', 'agent']) {
    const info = join(REPO_ROOT, 'packages', pkg, 'dist', '.tsbuildinfo');
    const built = existsSync(info) ? statSync(info).mtimeMs : 0;
    const walk = (d: string): void => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) {
          walk(p);
          continue;
        }
        if (n.endsWith('.ts') && !n.endsWith('.test.ts') && statSync(p).mtimeMs > built) stale.push(relative(REPO_ROOT, p));
      }
    };
    walk(join(REPO_ROOT, 'packages', pkg, 'src'));
  }
  if (stale.length > 0) {
    throw new Error(
      `dist/ is older than the sources (${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ', …' : ''}); run \`npx tsc -b\` first, or pass --source`,
    );
  }
}

/** Exits the bench (status 1) naming the fix if SPIRE's server or agent binary is missing. */
export function requireSpireBinaries(bench: string): void {
  try {
    spireServerBin();
    spireAgentBin();
  } catch (e) {
    if (e instanceof PeerMissingError) {
      console.error(`${bench} bench: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}

/**
 * The benches' agent.conf in `adir` (data in `data/`, trust bundle `bundle.pem`, Workload API
 * `workload.sock`, join token, memory KeyManager, each agent's own default sync interval).
 */
export function writeBenchAgentConf(adir: string, o: { trustDomain: string; port: number; token: string; logLevel: string }): { conf: string; socket: string } {
  const conf = join(adir, 'agent.conf');
  const socket = join(adir, 'workload.sock');
  writeFileSync(
    conf,
    agentConf({
      serverPort: o.port,
      trustDomain: o.trustDomain,
      dataDir: join(adir, 'data'),
      socketPath: socket,
      logLevel: o.logLevel,
      joinToken: o.token,
      trustBundlePath: join(adir, 'bundle.pem'),
      keyManager: 'memory',
      syncInterval: null,
    }),
  );
  return { conf, socket };
}

/**
 * The benches' server.conf in `sdir` (SQLite, P-256 CA and workload keys, X509-SVID TTL 1 h,
 * JWT-SVID TTL 5 min, log level WARN) on a free port.
 */
export async function writeBenchServerConf(
  sdir: string,
  trustDomain: string,
  extraServerConfig?: string,
): Promise<{ sconf: string; adminSocket: string; port: number }> {
  mkdirSync(join(sdir, 'data'), { recursive: true });
  const port = await freePort();
  const sconf = join(sdir, 'server.conf');
  const adminSocket = join(sdir, 'admin.sock');
  writeFileSync(
    sconf,
    serverConf({
      port,
      socketPath: adminSocket,
      trustDomain,
      dataDir: join(sdir, 'data'),
      settings: { log_level: 'WARN', ca_key_type: 'ec-p256', jwt_key_type: 'ec-p256', ca_ttl: '24h', default_x509_svid_ttl: '1h', default_jwt_svid_ttl: '5m' },
      ...(extraServerConfig === undefined ? {} : { extraServerConfig }),
    }),
  );
  return { sconf, adminSocket, port };
}

/**
 * A server (spire-server, or ztwim's through agent-proc.mjs) started from the benches' server.conf
 * in `sdir` (SQLite, P-256 CA and workload keys, X509-SVID TTL 1 h, JWT-SVID TTL 5 min), healthy.
 */
export async function startBenchServer(
  impl: Impl,
  sdir: string,
  o: { trustDomain: string; source: boolean; profDir?: string | undefined; extraServerConfig?: string },
): Promise<{ server: Proc; adminSocket: string; port: number }> {
  const { sconf, adminSocket, port } = await writeBenchServerConf(sdir, o.trustDomain, o.extraServerConfig);
  const server =
    impl === 'spire'
      ? startProc('spire-server', spireServerBin(), ['run', '-config', sconf], sdir)
      : startProc('ztwim server', process.execPath, [...nodeArgs('server', o.profDir, o.source), 'server', sconf], sdir);
  if (impl === 'spire') {
    await waitUntil('spire-server healthy', server, async () => (await runBinary(spireServerBin(), ['healthcheck', '-socketPath', adminSocket])).status === 0);
  } else {
    await waitUntil('ztwim server ready', server, () => server.output().includes('ready {'));
  }
  return { server, adminSocket, port };
}

/** A join token for a new agent (its SPIFFE ID) and the server's bundle written to `bundlePath`. */
export async function agentJoinToken(
  adminSocket: string,
  trustDomain: string,
  bundlePath: string,
  impl: Impl = 'spire',
): Promise<{ token: string; agentId: string }> {
  const tokenOut = await serverCli(['token', 'generate', '-spiffeID', `spiffe://${trustDomain}/bench-node`, '-ttl', '3600'], adminSocket, impl);
  const token = /Token:\s*(\S+)/.exec(tokenOut)?.[1];
  if (token === undefined) throw new Error(`no join token in: ${tokenOut}`);
  writeFileSync(bundlePath, await serverCli(['bundle', 'show'], adminSocket, impl));
  return { token, agentId: `spiffe://${trustDomain}/spire/agent/join_token/${token}` };
}
