// The swappable parts of the end-to-end test (test/k8s/e2e.test.ts): which server runs on the
// host, which agent runs as the DaemonSet, and how a workload pod reaches the agent's socket.
// Each is a small value; the test picks one of each at its top.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, spireServerBin, ZTWIM_BIN, ztwimNodeFlags } from '../../interop/lib/peers.ts';
import type { Proc } from '../../interop/lib/ztwim-cli.ts';
import { applyManifest, csiNodeDrivers, holdKubeletPlugin, kubectl, waitFor, type ClusterEnv } from './cluster.ts';
import { inNamespace, manifest } from './deploy.ts';

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
  /**
   * Undoes setUp once no pod uses the volume any more (the pods that do are deleted first, or
   * their unmount would wait for a driver that is gone).
   */
  tearDown?(env: ClusterEnv, ns: string): Promise<void>;
  /** The pod volume (`volumes[]` entry without its name) for the agent socket dir `hostDir`. */
  volume(hostDir: string): Record<string, unknown>;
}

/** A hostPath of the agent's socket dir: what works before a CSI driver is deployed. */
export const hostPathSocket: SocketAccess = {
  name: 'hostPath',
  volume: (hostDir) => ({ hostPath: { path: hostDir, type: 'Directory' } }),
};

const CSI_DRIVER = 'csi.spiffe.io';
/** The kubelet root the shipped manifests assume. */
const SHIPPED_KUBELET_ROOT = '/var/lib/kubelet';

let releaseCsiDriver: (() => void) | undefined;

/**
 * The `ztwim csi` DaemonSet and CSIDriver of deploy/k8s/csi-driver.yaml as shipped, in namespace
 * `ns`, with only what the shared test node needs changed: the image (imported, never pulled),
 * /var/lib/kubelet moved to the node's kubelet root everywhere (registration path, hostPaths and
 * the Bidirectional pods mount, which must be at the host's path), and the agent socket hostPath
 * set to the agent's. Holds the node-wide csi.spiffe.io lock (test/k8s/csi-driver.test.ts
 * registers a driver of that name too) from setUp until tearDown has seen it deregistered.
 */
export const csiSocket: SocketAccess = {
  name: `the ${CSI_DRIVER} driver (ztwim csi DaemonSet)`,
  async setUp(env, ns, hostDir, image) {
    releaseCsiDriver = await holdKubeletPlugin(env, CSI_DRIVER);
    if ((await csiNodeDrivers(env)).includes(CSI_DRIVER)) throw new Error(`another ${CSI_DRIVER} driver is registered with the kubelet already`);
    const objects = inNamespace(manifest('csi-driver.yaml'), ns).map((o) => {
      if (o.kind === 'CSIDriver') {
        delete o.metadata.namespace;
        return o;
      }
      if (o.kind !== 'DaemonSet') return o;
      const ds = JSON.parse(JSON.stringify(o).replaceAll(`"${SHIPPED_KUBELET_ROOT}/`, `"${env.kubeletRoot}/`)) as CsiDaemonSet;
      const pod = ds.spec.template.spec;
      for (const c of pod.containers) {
        c.image = image;
        c.imagePullPolicy = 'Never';
      }
      const sockets = pod.volumes.find((v) => v.name === 'spire-agent-socket-dir');
      if (sockets?.hostPath === undefined) throw new Error('deploy/k8s/csi-driver.yaml: no spire-agent-socket-dir hostPath volume');
      sockets.hostPath.path = hostDir;
      return ds;
    });
    await applyManifest(env, objects.map((o) => JSON.stringify(o)).join('\n'));
    await waitFor(`CSINode to list ${CSI_DRIVER}`, async () => ((await csiNodeDrivers(env)).includes(CSI_DRIVER) ? true : undefined), 120_000)
      .catch(async (e: Error) => {
        const logs = await kubectl(env, ['logs', '-n', ns, '-l', 'app.kubernetes.io/name=ztwim-csi-driver', '--tail=50']).catch((x: Error) => x.message);
        const pods = await kubectl(env, ['get', 'pods', '-n', ns, '-o', 'wide']).catch((x: Error) => x.message);
        const events = await kubectl(env, ['get', 'events', '-n', ns, '--field-selector', 'type=Warning']).catch((x: Error) => x.message);
        throw new Error(`${e.message}\n${pods}\n${events}\ncsi driver logs:\n${logs}`);
      });
  },
  async tearDown(env, ns) {
    if (releaseCsiDriver === undefined) return;
    try {
      await kubectl(env, ['delete', 'daemonset', '-n', ns, 'ztwim-csi-driver', '--ignore-not-found', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
      await waitFor(`the kubelet to deregister ${CSI_DRIVER}`, async () => ((await csiNodeDrivers(env)).includes(CSI_DRIVER) ? undefined : true), 60_000);
      await kubectl(env, ['delete', 'csidriver', CSI_DRIVER, '--ignore-not-found']);
    } finally {
      releaseCsiDriver();
      releaseCsiDriver = undefined;
    }
  },
  volume: () => ({ csi: { driver: CSI_DRIVER, readOnly: true } }),
};

/** The parts of the CSI driver's DaemonSet the test sets. */
interface CsiDaemonSet {
  spec: { template: { spec: { containers: Array<{ image: string; imagePullPolicy?: string }>; volumes: Array<{ name: string; hostPath?: { path: string } }> } } };
}

/** The workload pods' image: ours, for `ztwim api fetch`. */
export const WORKLOAD_IMAGE = `ztwim:${VERSION}`;
