// A real SPIRE server (v1.13.0) in a temp directory, plus real `spire-agent`s attesting to it
// with join tokens, for the admin-CLI interop tests. Everything runs asynchronously (never
// spawnSync), so the same test can later be pointed at an in-process ztwim server.
// A missing binary is a PeerMissingError: the test fails, never skips.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './net.ts';
import { cacheDir, PeerMissingError, SPIRE_VERSION } from './peers.ts';
import { agentConf, serverConf, serverWorkspace } from './server-conf.ts';
import type { TmpDir } from './tmp.ts';

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Path of a real SPIRE binary: $ZTWIM_SPIRE_SERVER / $ZTWIM_SPIRE_AGENT if set, else
 * ~/.cache/ztwim/spire-v1.13.0/bin (scripts/setup-interop.sh), then /tmp/spirebuild/bin.
 */
export function findSpireBinary(name: 'spire-server' | 'spire-agent'): string {
  const fromEnv = process.env[name === 'spire-server' ? 'ZTWIM_SPIRE_SERVER' : 'ZTWIM_SPIRE_AGENT'];
  const candidates =
    fromEnv !== undefined && fromEnv !== '' ? [fromEnv] : [join(cacheDir(), `spire-${SPIRE_VERSION}`, 'bin', name), join('/tmp/spirebuild/bin', name)];
  for (const c of candidates) if (isExecutable(c)) return c;
  throw new PeerMissingError(`SPIRE ${SPIRE_VERSION} ${name}`, `no executable at ${candidates.join(' or ')}`);
}

/** Re-exported: the helpers that start servers have always offered it. */
export { freePort };

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a binary without blocking the event loop. */
export async function runBinary(
  binary: string,
  args: readonly string[],
  opts: { input?: string; cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return await new Promise((resolve, reject) => {
    const env = opts.env === undefined ? process.env : { ...process.env, ...opts.env };
    const child = spawn(binary, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ status: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Collects a child's output, kills it if the test process exits first, and stops it (TERM, then KILL after 5 s). */
export function supervise(child: ChildProcess): { exited: () => number | null | undefined; stop: () => Promise<void>; logs: () => string } {
  let logs = '';
  let exited: number | null | undefined;
  child.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  const killOnExit = (): void => {
    if (exited === undefined) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  child.on('exit', (code) => {
    exited = code;
    process.removeListener('exit', killOnExit);
  });
  const stop = async (): Promise<void> => {
    if (exited !== undefined) return;
    const done = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  };
  return { exited: () => exited, stop, logs: () => logs };
}

export interface AdminServerOptions {
  trustDomain?: string;
  /** Extra lines inside `server { }`. */
  extraServerConfig?: string;
}

/** A server whose admin API is reachable on `socketPath`, and the real CLI to drive it. */
export interface AdminServer {
  readonly dir: TmpDir;
  readonly socketPath: string;
  readonly port: number;
  readonly trustDomain: string;
  /** Runs the real `spire-server <args...>` (no `-socketPath` added). */
  spireCli(args: readonly string[], input?: string): Promise<CliResult>;
  logs(): string;
  stop(): Promise<void>;
}

/** Starts `spire-server run` (sqlite, memory KeyManager, join_token) and waits until healthy. */
export async function startSpireAdminServer(opts: AdminServerOptions = {}): Promise<AdminServer> {
  const binary = findSpireBinary('spire-server');
  const trustDomain = opts.trustDomain ?? 'example.org';
  const { dir, dataDir, socketPath, port } = await serverWorkspace('ztwim-spire-admin-');
  const conf = serverConf({
    port,
    socketPath,
    trustDomain,
    dataDir,
    settings: { log_level: 'DEBUG', ca_ttl: '24h', default_x509_svid_ttl: '1h', default_jwt_svid_ttl: '5m' },
    ...(opts.extraServerConfig === undefined ? {} : { extraServerConfig: opts.extraServerConfig }),
  });
  const confPath = dir.write('server.conf', conf);
  const child = spawn(binary, ['run', '-config', confPath], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] });
  const sup = supervise(child);
  const spireCli = (args: readonly string[], input?: string): Promise<CliResult> =>
    runBinary(binary, args, input === undefined ? { cwd: dir.path } : { cwd: dir.path, input });
  const stop = async (): Promise<void> => {
    await sup.stop();
    dir.cleanup();
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (sup.exited() !== undefined) {
      const l = sup.logs();
      dir.cleanup();
      throw new Error(`spire-server exited during startup (code ${String(sup.exited())}):\n${l}`);
    }
    const r = await spireCli(['healthcheck', '-socketPath', socketPath]);
    if (r.status === 0) break;
    if (Date.now() > deadline) {
      const l = sup.logs();
      await stop();
      throw new Error(`spire-server not healthy after 60s:\n${r.stderr}\n${l}`);
    }
    await delay(200);
  }
  return { dir, socketPath, port, trustDomain, spireCli, logs: sup.logs, stop };
}

export interface SpireAgent {
  readonly socketPath: string;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts a real `spire-agent run` that attests to `server` with `joinToken`; the trust bundle
 * comes from `spire-server bundle show`. Resolves once the agent reports healthy.
 */
export async function startSpireAgent(server: AdminServer, joinToken: string): Promise<SpireAgent> {
  const binary = findSpireBinary('spire-agent');
  const bundle = await server.spireCli(['bundle', 'show', '-socketPath', server.socketPath]);
  if (bundle.status !== 0) throw new Error(`bundle show failed: ${bundle.stderr}`);
  const dir = join(server.dir.path, `agent-${joinToken.slice(0, 8)}`);
  mkdirSync(join(dir, 'data'), { recursive: true });
  const bundlePath = join(dir, 'bundle.pem');
  writeFileSync(bundlePath, bundle.stdout);
  const socketPath = join(dir, 'agent.sock');
  const conf = agentConf({
    serverPort: server.port,
    trustDomain: server.trustDomain,
    dataDir: join(dir, 'data'),
    socketPath,
    logLevel: 'DEBUG',
    joinToken,
    trustBundlePath: bundlePath,
    keyManager: 'memory',
    syncInterval: null,
  });
  const confPath = join(dir, 'agent.conf');
  writeFileSync(confPath, conf);
  const child = spawn(binary, ['run', '-config', confPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const sup = supervise(child);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (sup.exited() !== undefined) throw new Error(`spire-agent exited early (code ${String(sup.exited())}):\n${sup.logs()}`);
    const r = await runBinary(binary, ['healthcheck', '-socketPath', socketPath]);
    if (r.status === 0) break;
    if (Date.now() > deadline) {
      await sup.stop();
      throw new Error(`spire-agent not healthy after 60s:\n${sup.logs()}`);
    }
    await delay(250);
  }
  return { socketPath, logs: sup.logs, stop: sup.stop };
}
