// A real SPIRE server (v1.13.0) in a temp directory, plus real `spire-agent`s attesting to it
// with join tokens, for the admin-CLI interop tests. Everything runs asynchronously (never
// spawnSync), so the same test can later be pointed at an in-process ztwim server.
// A missing binary is a PeerMissingError: the test fails, never skips.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adoptProc, freePort, runBinary, startProc, waitReady, type CliResult } from '@ztwim/testkit/procs';
import { findSpireBinary } from './peers.ts';
import { agentConf, serverConf, serverWorkspace } from './server-conf.ts';
import type { TmpDir } from './tmp.ts';

/** Where the SPIRE binaries are (peers.ts); the admin-CLI tests import it from here. */
export { findSpireBinary };

/** Re-exported from the harness (@ztwim/testkit/procs): the helpers that start servers have always offered them. */
export { freePort, runBinary, type CliResult };

/**
 * A spawned peer handed to the harness (@ztwim/testkit/procs): output collected, killed if the test
 * process exits first, stopped with TERM then KILL after 5 s. `exited()` is its exit code
 * (undefined while it runs).
 */
export function supervise(child: ChildProcess, name = 'peer'): { exited: () => number | null | undefined; stop: () => Promise<void>; logs: () => string } {
  const p = adoptProc(name, child);
  return { exited: p.exitCode, stop: p.stop, logs: p.output };
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
  const proc = startProc('spire-server', binary, ['run', '-config', confPath], { cwd: dir.path });
  const spireCli = (args: readonly string[], input?: string): Promise<CliResult> =>
    runBinary(binary, args, input === undefined ? { cwd: dir.path } : { cwd: dir.path, input });
  const stop = async (): Promise<void> => {
    await proc.stop();
    dir.cleanup();
  };
  try {
    await waitReady('spire-server healthy', proc, async () => (await spireCli(['healthcheck', '-socketPath', socketPath])).status === 0);
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, socketPath, port, trustDomain, spireCli, logs: proc.output, stop };
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
  const proc = startProc('spire-agent', binary, ['run', '-config', confPath], { cwd: dir });
  try {
    await waitReady('spire-agent healthy', proc, async () => (await runBinary(binary, ['healthcheck', '-socketPath', socketPath])).status === 0, {
      intervalMs: 250,
    });
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { socketPath, logs: proc.output, stop: proc.stop };
}
