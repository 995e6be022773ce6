// Runs a real SPIRE v1.13.0 server (built by scripts/setup-interop.sh) in a temp dir, with the
// sqlite datastore, the memory key manager and join_token attestation, for interop tests.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, runBinary, startProc, waitReady } from '@ztwim/testkit/procs';
import { spireServerBin } from './peers.ts';
import { serverConf } from './server-conf.ts';
import type { TmpDir } from './tmp.ts';

export interface SpireServerOptions {
  trustDomain?: string;
  caKeyType?: 'ec-p256' | 'ec-p384' | 'rsa-2048';
  jwtKeyType?: 'ec-p256' | 'ec-p384' | 'rsa-2048';
  /** TCP port for the agent/server API (default: a free port; SPIRE reads 0 as its default 8081). */
  bindPort?: number;
  /** KeyManager plugin (default memory; disk keeps the CA across restarts). */
  keyManager?: 'memory' | 'disk';
  /** Extra lines inside the `server { }` block. */
  extraServerConfig?: string;
  /** Extra plugin blocks inside `plugins { }` (e.g. an x509pop NodeAttestor). */
  extraPlugins?: string;
  /** Extra environment of the server process (e.g. SSL_CERT_FILE: the roots Go trusts for https_web). */
  env?: Readonly<Record<string, string>>;
}

export interface SpireServer {
  socketPath: string;
  dir: string;
  /** Runs `spire-server <args...> -socketPath <sock>`; returns stdout, throws on failure. */
  cli(args: string[], input?: string): string;
  /** Like cli but returns status and output instead of throwing. */
  tryCli(args: string[], input?: string): { status: number; stdout: string; stderr: string };
  stop(): Promise<void>;
  /** Server output so far (for failure messages). */
  logs(): string;
}

export async function startSpireServer(tmp: TmpDir, opts: SpireServerOptions = {}): Promise<SpireServer> {
  const bin = spireServerBin();
  const dir = join(tmp.path, 'spire-server');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const socketPath = join(dir, 'api.sock');
  const td = opts.trustDomain ?? 'example.org';
  const conf = serverConf({
    port: opts.bindPort ?? (await freePort()),
    socketPath,
    trustDomain: td,
    dataDir,
    settings: {
      log_level: 'WARN',
      ca_key_type: opts.caKeyType ?? 'ec-p256',
      jwt_key_type: opts.jwtKeyType ?? 'ec-p256',
      ca_ttl: '24h',
      default_x509_svid_ttl: '1h',
      default_jwt_svid_ttl: '5m',
    },
    ...(opts.extraServerConfig === undefined ? {} : { extraServerConfig: opts.extraServerConfig }),
    ...(opts.keyManager === 'disk' ? { keyManager: { disk: join(dataDir, 'keys.json') } } : {}),
    ...(opts.extraPlugins === undefined ? {} : { extraPlugins: opts.extraPlugins }),
  });
  const confFile = tmp.write('spire-server.conf', conf);
  // The harness kills the server if the test process dies on an exception.
  const proc = startProc('spire-server', bin, ['run', '-config', confFile], opts.env === undefined ? {} : { env: opts.env });

  const tryCli = (args: string[], input?: string): { status: number; stdout: string; stderr: string } => {
    const r = spawnSync(bin, [...args, '-socketPath', socketPath], { encoding: 'utf8', input, timeout: 30_000 });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const server: SpireServer = {
    socketPath,
    dir,
    tryCli,
    cli(args, input) {
      const r = tryCli(args, input);
      if (r.status !== 0) throw new Error(`spire-server ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    stop: proc.stop,
    logs: proc.output,
  };

  // The API socket answers the health check (checked without blocking the event loop).
  try {
    await waitReady('spire-server healthy', proc, async () => (await runBinary(bin, ['healthcheck', '-socketPath', socketPath])).status === 0);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}
