// The swappable parts of the end-to-end test (test/k8s/e2e.test.ts): which server runs on the
// host, which agent runs as the DaemonSet, and how a workload pod reaches the agent's socket.
// Each is a small value; the test picks one of each at its top.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, spireServerBin, ZTWIM_BIN, ztwimNodeFlags } from '../../interop/lib/peers.ts';
import type { Proc } from '../../interop/lib/ztwim-cli.ts';
import { applyManifest, csiNodeDrivers, holdKubeletPlugin, kubectl, waitFor, type ClusterEnv } from './cluster.ts';
import { inNamespace, manifest } from './deploy.ts';
import { SPIRE_TEST_IMAGE, ZTWIM_IMAGE } from './image.ts';

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
 * from `image` (built and imported by test/k8s/lib/image.ts, with SPIRE's binaries when `spire`) with
 * `command` as the container's command (the config path is the manifest's).
 */
export interface AgentImpl {
  readonly name: string;
  readonly image: string;
  readonly spire: boolean;
  readonly command: readonly string[];
}

const AGENT_CONF = '/run/spire/config/agent.conf';

/** SPIRE v1.13.0's spire-agent, from the test-only image that adds SPIRE's binaries to ours. */
export const spireAgentDaemonSet: AgentImpl = {
  name: 'spire-agent v1.13.0 DaemonSet',
  image: SPIRE_TEST_IMAGE,
  spire: true,
  command: ['spire-agent', 'run', '-config', AGENT_CONF],
};

/** `ztwim agent run`, as the shipped DaemonSet runs it (needs the k8s_psat and k8s attestors). */
export const ztwimAgentDaemonSet: AgentImpl = {
  name: 'ztwim agent DaemonSet',
  image: ZTWIM_IMAGE,
  spire: false,
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
    await waitFor(`CSINode to list ${CSI_DRIVER}`, async () => ((await csiNodeDrivers(env)).includes(CSI_DRIVER) ? true : undefined), 120_000).catch(
      async (e: Error) => {
        const logs = await kubectl(env, ['logs', '-n', ns, '-l', 'app.kubernetes.io/name=ztwim-csi-driver', '--tail=50']).catch((x: Error) => x.message);
        const pods = await kubectl(env, ['get', 'pods', '-n', ns, '-o', 'wide']).catch((x: Error) => x.message);
        const events = await kubectl(env, ['get', 'events', '-n', ns, '--field-selector', 'type=Warning']).catch((x: Error) => x.message);
        throw new Error(`${e.message}\n${pods}\n${events}\ncsi driver logs:\n${logs}`);
      },
    );
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
  spec: {
    template: { spec: { containers: Array<{ image: string; imagePullPolicy?: string }>; volumes: Array<{ name: string; hostPath?: { path: string } }> } };
  };
}

/** The workload pods' image: ours, for `ztwim api fetch`. */
export const WORKLOAD_IMAGE = ZTWIM_IMAGE;

/** What a registration step knows: the cluster, the workload's namespace and the IDs to tie. */
export interface RegistrationContext {
  readonly env: ClusterEnv;
  /** The workload pods' namespace. */
  readonly namespace: string;
  readonly trustDomain: string;
  readonly agentId: string;
  /** spiffe://<td>/ns/<namespace>/sa/client: the ID pod `client` must get. */
  readonly clientId: string;
  /** The server's admin socket. */
  readonly serverSocket: string;
  /** `<server> <args> -socketPath <socket>`. */
  cli(args: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }>;
}

/** How the workload's entry comes to be: by hand, or from a ClusterSPIFFEID through the registrar. */
export interface Registration {
  readonly name: string;
  register(ctx: RegistrationContext): Promise<void>;
  tearDown?(ctx: RegistrationContext): Promise<void>;
}

/** `entry create -parentID <agent> -spiffeID <client> -selector k8s:ns:<ns> -selector k8s:sa:client`. */
export const entryByHand: Registration = {
  name: 'entry create by hand',
  async register(ctx) {
    const r = await ctx.cli([
      'entry',
      'create',
      '-parentID',
      ctx.agentId,
      '-spiffeID',
      ctx.clientId,
      '-selector',
      `k8s:ns:${ctx.namespace}`,
      '-selector',
      'k8s:sa:client',
    ]);
    if (r.status !== 0) throw new Error(`entry create: ${r.stderr}`);
    if (!r.stdout.includes(ctx.clientId)) throw new Error(`entry create printed no ${ctx.clientId}: ${r.stdout}`);
  },
};

let registrar: { close(): Promise<void> } | undefined;
let registrarCr: string | undefined;

/**
 * `ztwim registrar` (in-process, as the command runs it) and a ClusterSPIFFEID giving pods
 * labelled app=client in the workload namespace spiffe://<td>/ns/<ns>/sa/<service account>: no
 * entry is created by hand. Pod `other` (app=other) matches nothing and gets no entry.
 */
export const entryByRegistrar: Registration = {
  name: 'ClusterSPIFFEID through ztwim registrar',
  async register(ctx) {
    const { cryptoRandom, silentLogger, systemClock } = await import('@ztwim/core');
    const { connectKube, dialEntryClient, parseManagerConfig, startRegistrar } = await import('@ztwim/registrar');
    for (const f of readdirSync(join(REPO_ROOT, 'deploy', 'k8s', 'registrar', 'crds'))) {
      await applyManifest(ctx.env, readFileSync(join(REPO_ROOT, 'deploy', 'k8s', 'registrar', 'crds', f), 'utf8'));
    }
    await kubectl(ctx.env, ['wait', '--for=condition=Established', 'crd/clusterspiffeids.spire.spiffe.io', '--timeout=60s']);
    const className = `e2e-${ctx.namespace}`;
    registrarCr = className;
    await applyManifest(
      ctx.env,
      JSON.stringify({
        apiVersion: 'spire.spiffe.io/v1alpha1',
        kind: 'ClusterSPIFFEID',
        metadata: { name: className },
        spec: {
          className,
          spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}',
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ctx.namespace } },
          podSelector: { matchLabels: { app: 'client' } },
        },
      }),
    );
    const entries = dialEntryClient(ctx.serverSocket);
    const r = startRegistrar({
      config: parseManagerConfig(
        `clusterName: ${ctx.env.clusterName}\ntrustDomain: ${ctx.trustDomain}\nclassName: ${className}\ngcInterval: 2s\nentryIDPrefix: e2e\n`,
      ),
      entries,
      kube: await connectKube(ctx.env.kubeconfig),
      clock: systemClock,
      random: cryptoRandom,
      log: silentLogger(),
    });
    registrar = {
      close: async () => {
        await r.close();
        entries.close();
      },
    };
    await r.ready;
  },
  async tearDown(ctx) {
    await registrar?.close();
    registrar = undefined;
    if (registrarCr !== undefined) await kubectl(ctx.env, ['delete', 'clusterspiffeid', registrarCr, '--ignore-not-found', '--wait=false']).catch(() => '');
  },
};
