// The swappable parts of the end-to-end test (test/k8s/e2e.test.ts): which server runs on the
// host, which agent runs as the DaemonSet, and how a workload pod reaches the agent's socket.
// Each is a small value; the test picks one of each at its top.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, spireServerBin, ZTWIM_BIN, ztwimNodeFlags } from '../../interop/lib/peers.ts';
import type { Proc } from '../../interop/lib/ztwim-cli.ts';
import type { ClusterEnv } from './cluster.ts';

/** The version image.sh tags the images with (the root package.json's). */
export const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * The server, run as a host process with deploy/k8s/server.conf (SPIRE's format, which both
 * read). Its CLI takes SPIRE's subcommands and flags: `run -config F`, `healthcheck`,
 * `bundle show`, `agent list`, `entry create`, each with `-socketPath`.
 */
export interface ServerImpl {
  readonly name: string;
  /** The argv before the subcommand. */
  argv(): string[];
}

/** SPIRE v1.13.0's own spire-server (scripts/setup-interop.sh builds it). */
export const spireServer: ServerImpl = {
  name: 'spire-server v1.13.0',
  argv: () => [spireServerBin()],
};

/** `ztwim server` of this tree (needs its k8s_psat NodeAttestor). */
export const ztwimServer: ServerImpl = {
  name: 'ztwim server',
  argv: () => [process.execPath, ...ztwimNodeFlags(), ZTWIM_BIN, 'server'],
};

/** Starts `<server> run -config <conf>` in `cwd`, collecting its output. */
export function startServer(impl: ServerImpl, conf: string, cwd: string): Proc {
  const [cmd = '', ...args] = impl.argv();
  const child = spawn(cmd, [...args, 'run', '-config', conf], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

/**
 * The agent DaemonSet: deploy/k8s/agent-daemonset.yaml and agent-configmap.yaml as shipped, run
 * from `image` (built and imported by `scripts/k8s/image.sh <imageArgs> --import`) with
 * `command` as the container's command (the config path is the manifest's).
 */
export interface AgentImpl {
  readonly name: string;
  readonly image: string;
  readonly imageArgs: readonly string[];
  readonly command: readonly string[];
}

const AGENT_CONF = '/run/spire/config/agent.conf';

/** SPIRE v1.13.0's spire-agent, from the test-only image that adds SPIRE's binaries to ours. */
export const spireAgentDaemonSet: AgentImpl = {
  name: 'spire-agent v1.13.0 DaemonSet',
  image: `ztwim-spire-test:${VERSION}`,
  imageArgs: ['--spire'],
  command: ['spire-agent', 'run', '-config', AGENT_CONF],
};

/** `ztwim agent run`, as the shipped DaemonSet runs it (needs the k8s_psat and k8s attestors). */
export const ztwimAgentDaemonSet: AgentImpl = {
  name: 'ztwim agent DaemonSet',
  image: `ztwim:${VERSION}`,
  imageArgs: [],
  command: ['ztwim', 'agent', 'run', '-config', AGENT_CONF],
};

/** How a workload pod gets the agent's socket directory at /run/spire/sockets. */
export interface SocketAccess {
  readonly name: string;
  /**
   * Deploys what the volume needs (a CSI driver's DaemonSet and CSIDriver object) in namespace
   * `ns`, serving the agent socket dir `hostDir`, from image `image`; waits until it is ready.
   */
  setUp?(env: ClusterEnv, ns: string, hostDir: string, image: string): Promise<void>;
  /** The pod volume (`volumes[]` entry without its name) for the agent socket dir `hostDir`. */
  volume(hostDir: string): Record<string, unknown>;
}

/** A hostPath of the agent's socket dir: what works before a CSI driver is deployed. */
export const hostPathSocket: SocketAccess = {
  name: 'hostPath',
  volume: (hostDir) => ({ hostPath: { path: hostDir, type: 'Directory' } }),
};

/** The workload pods' image: ours, for `ztwim api fetch`. */
export const WORKLOAD_IMAGE = `ztwim:${VERSION}`;
