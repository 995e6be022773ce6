// Runs a real SPIRE v1.13.0 agent (join_token attestation, unix workload attestor) against a
// server from spire-server.ts, with its Workload API socket in a temp dir.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startProc, waitReady } from '@ztwim/testkit/procs';
import { spireAgentBin } from './peers.ts';
import type { SpireServer } from './spire-server.ts';
import type { TmpDir } from './tmp.ts';

/** A free TCP port on 127.0.0.1 (for spire-server's bind_port), re-exported so suites that start an agent need one import. */
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
  const proc = startProc('spire-agent', bin, ['run', '-config', confFile]);
  const agent: SpireAgent = { socketPath, agentId, stop: proc.stop, logs: proc.output };
  try {
    await waitReady('spire-agent Workload API socket', proc, () => existsSync(socketPath), { timeoutMs: 30_000, intervalMs: 100 });
  } catch (e) {
    await agent.stop();
    throw e;
  }
  return agent;
}
