// Runs a real SPIRE v1.13.0 agent (join_token attestation, unix workload attestor) against a
// server from spire-server.ts, with its Workload API socket in a temp dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { spireAgentBin } from './peers.ts';
import type { SpireServer } from './spire-server.ts';
import type { TmpDir } from './tmp.ts';
import { freePort } from './spire-admin.ts';

/** A currently free TCP port on 127.0.0.1 (for spire-server's bind_port). */
/** Re-exported so suites that start an agent need one import; the one implementation is in spire-admin.ts. */
export { freePort };

export interface SpireAgent {
  /** Workload API socket path. */
  socketPath: string;
  /** `spiffe://<td>/spire/agent/join_token/<token>`. */
  agentId: string;
  stop(): Promise<void>;
  logs(): string;
}

export async function startSpireAgent(
  tmp: TmpDir,
  server: SpireServer,
  opts: {
    trustDomain?: string;
    serverPort: number;
    /** Runs before the agent starts, with its future SPIFFE ID (create entries here: no sync wait). */
    beforeStart?: (agentId: string) => void;
    /** Extra plugin blocks inside `plugins { }` (e.g. a k8s WorkloadAttestor). */
    extraPlugins?: string;
    /** Extra top-level blocks after `plugins { }` (e.g. `telemetry { ... }`). */
    extraConfig?: string;
    /** Extra lines inside `agent { }` (e.g. `allow_unauthenticated_verifiers = true`). */
    extraAgent?: string;
    /** log_level (default INFO) and log_format (default text). */
    logLevel?: string;
    logFormat?: 'text' | 'json';
  },
): Promise<SpireAgent> {
  const bin = spireAgentBin();
  const td = opts.trustDomain ?? 'example.org';
  const dir = join(tmp.path, 'spire-agent');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const socketPath = join(dir, 'workload.sock');
  const token = /Token:\s*(\S+)/.exec(server.cli(['token', 'generate', '-spiffeID', `spiffe://${td}/agent-node`]))?.[1];
  if (token === undefined) throw new Error('spire-server token generate printed no token');
  const agentId = `spiffe://${td}/spire/agent/join_token/${token}`;
  opts.beforeStart?.(agentId);
  const bundlePath = tmp.write('agent-bundle.pem', server.cli(['bundle', 'show']));
  const conf = `
agent {
  data_dir = "${dataDir}"
  log_level = "${opts.logLevel ?? 'INFO'}"
  log_format = "${opts.logFormat ?? 'text'}"
  server_address = "127.0.0.1"
  server_port = "${opts.serverPort}"
  socket_path = "${socketPath}"
  trust_bundle_path = "${bundlePath}"
  trust_domain = "${td}"
  join_token = "${token}"
${opts.extraAgent ?? ''}
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
${opts.extraPlugins ?? ''}
}
${opts.extraConfig ?? ''}
`;
  const confFile = tmp.write('spire-agent.conf', conf);
  let output = '';
  const child: ChildProcess = spawn(bin, ['run', '-config', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  let exited: number | null = null;
  const killOnExit = (): void => {
    if (exited === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  child.on('exit', (code) => {
    exited = code ?? -1;
    process.removeListener('exit', killOnExit);
  });
  const agent: SpireAgent = {
    socketPath,
    agentId,
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
  const deadline = Date.now() + 30_000;
  while (!existsSync(socketPath)) {
    if (exited !== null) throw new Error(`spire-agent exited with ${String(exited)} during startup:\n${output}`);
    if (Date.now() > deadline) {
      await agent.stop();
      throw new Error(`spire-agent socket not ready after 30s:\n${output}`);
    }
    await delay(100);
  }
  return agent;
}
