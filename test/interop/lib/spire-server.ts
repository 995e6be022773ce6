// Runs a real SPIRE v1.13.0 server (built by scripts/setup-interop.sh) in a temp dir, with the
// sqlite datastore, the memory key manager and join_token attestation, for interop tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { spireServerBin } from './peers.ts';
import type { TmpDir } from './tmp.ts';

export interface SpireServerOptions {
  trustDomain?: string;
  caKeyType?: 'ec-p256' | 'ec-p384' | 'rsa-2048';
  jwtKeyType?: 'ec-p256' | 'ec-p384' | 'rsa-2048';
  /** TCP port for the agent/server API (default 0: any free port). */
  bindPort?: number;
  /** KeyManager plugin (default memory; disk keeps the CA across restarts). */
  keyManager?: 'memory' | 'disk';
  /** Extra lines inside the `server { }` block. */
  extraServerConfig?: string;
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
  const conf = `
server {
  bind_address = "127.0.0.1"
  bind_port = "${opts.bindPort ?? 0}"
  socket_path = "${socketPath}"
  trust_domain = "${td}"
  data_dir = "${dataDir}"
  log_level = "WARN"
  ca_key_type = "${opts.caKeyType ?? 'ec-p256'}"
  jwt_key_type = "${opts.jwtKeyType ?? 'ec-p256'}"
  ca_ttl = "24h"
  default_x509_svid_ttl = "1h"
  default_jwt_svid_ttl = "5m"
  ${opts.extraServerConfig ?? ''}
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(dataDir, 'datastore.sqlite3')}"
    }
  }
  ${opts.keyManager === 'disk' ? `KeyManager "disk" {
    plugin_data { keys_path = "${join(dataDir, 'keys.json')}" }
  }` : `KeyManager "memory" {
    plugin_data {}
  }`}
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
`;
  const confFile = tmp.write('spire-server.conf', conf);
  let output = '';
  const child: ChildProcess = spawn(bin, ['run', '-config', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  let exited: number | null = null;
  // Never leave a server behind, even when the test process dies on an exception.
  const killOnExit = (): void => {
    if (exited === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  child.on('exit', (code) => {
    exited = code ?? -1;
    process.removeListener('exit', killOnExit);
  });

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
    async stop() {
      if (exited !== null) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    },
    logs: () => output,
  };

  // Wait (bounded) for the API socket to answer the health check.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) throw new Error(`spire-server exited with ${String(exited)} during startup:\n${output}`);
    const r = tryCli(['healthcheck']);
    if (r.status === 0) break;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`spire-server not healthy after 60s:\n${r.stderr}\n${output}`);
    }
    await delay(200);
  }
  return server;
}
