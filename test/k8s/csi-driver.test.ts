// `ztwim csi` on the real kubelet of the project's test cluster (scripts/k8s/cluster.sh): a host
// process that registers itself through the kubelet's plugin registry (CSINode then lists
// csi.spiffe.io), a CSIDriver object, and busybox pods (hostNetwork: the node has loopback-only
// CNI) with a `csi.spiffe.io` inline volume. The pod sees the socket directory's content,
// read-only; deleting the pod unmounts it; a pod asking for a writable volume gets the driver's
// InvalidArgument text in its events; stopping the driver deregisters it.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readMountInfo } from '@ztwim/csi';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { startZtwim, stopProc, type Proc } from '../interop/lib/ztwim-cli.ts';
import {
  applyManifest,
  createNamespace,
  type CsiNode,
  ensureCluster,
  csiNodeDrivers,
  holdKubeletPlugin,
  kubectl,
  waitFor,
  waitPodRunning,
  type ClusterEnv,
} from './lib/cluster.ts';

const DRIVER = 'csi.spiffe.io';

function podManifest(ns: string, name: string, readOnly: boolean): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      hostNetwork: true,
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: 'workload',
          image: 'busybox:local',
          imagePullPolicy: 'Never',
          command: ['sleep', '3600'],
          env: [{ name: 'SPIFFE_ENDPOINT_SOCKET', value: 'unix:///run/spire/sockets/spire-agent.sock' }],
          volumeMounts: [{ name: 'spiffe-workload-api', mountPath: '/run/spire/sockets', readOnly: true }],
        },
      ],
      volumes: [{ name: 'spiffe-workload-api', csi: { driver: DRIVER, readOnly } }],
    },
  });
}

describe('ztwim csi on the real kubelet', () => {
  let env: ClusterEnv;
  let tmp: TmpDir;
  let socketDir: string;
  let agentSocket: Server;
  let driver: Proc;
  let createdCsiDriverObject = false;
  let ns: string;
  let releasePlugin: (() => void) | undefined;

  before(async () => {
    env = await ensureCluster();
    // e2e.test.ts registers csi.spiffe.io too (its DaemonSet), maybe at the same time
    releasePlugin = await holdKubeletPlugin(env, DRIVER);
    tmp = makeTmpDir('ztwim-k8s-csi-');
    socketDir = join(tmp.path, 'agent-sockets');
    mkdirSync(socketDir);
    // A listening Unix socket where the agent's would be, and a file to read through the volume.
    agentSocket = createServer();
    await new Promise<void>((r) => agentSocket.listen(join(socketDir, 'spire-agent.sock'), r));
    writeFileSync(join(socketDir, 'hello'), 'from the host\n');

    assert.ok(!(await csiNodeDrivers(env)).includes(DRIVER), `another ${DRIVER} driver is registered with the kubelet already`);
    driver = startZtwim(tmp, [
      'csi',
      '-workload-api-socket-dir',
      socketDir,
      '-csi-socket-path',
      join(env.kubeletRoot, 'plugins', DRIVER, 'csi.sock'),
      '-kubelet-plugins-registry-dir',
      join(env.kubeletRoot, 'plugins_registry'),
      '-node-id',
      env.nodeName,
      '-log-level',
      'debug',
    ]);
    try {
      await kubectl(env, ['get', 'csidriver', DRIVER]);
    } catch {
      await applyManifest(
        env,
        JSON.stringify({
          apiVersion: 'storage.k8s.io/v1',
          kind: 'CSIDriver',
          metadata: { name: DRIVER },
          spec: { attachRequired: false, podInfoOnMount: true, fsGroupPolicy: 'None', volumeLifecycleModes: ['Ephemeral'] },
        }),
      );
      createdCsiDriverObject = true;
    }
    ns = await createNamespace(env, 'ztwim-csi');
  });

  after(async () => {
    if (driver !== undefined) await stopProc(driver);
    if (createdCsiDriverObject) await kubectl(env, ['delete', 'csidriver', DRIVER, '--ignore-not-found']).catch(() => undefined);
    if (releasePlugin !== undefined) {
      await waitFor(`the kubelet to deregister ${DRIVER}`, async () => ((await csiNodeDrivers(env)).includes(DRIVER) ? undefined : true), 60_000).catch(
        () => undefined,
      );
      releasePlugin();
    }
    await new Promise((r) => agentSocket?.close(r));
    tmp?.cleanup();
  });

  it('registers with the kubelet: CSINode lists csi.spiffe.io with the node ID', async () => {
    await waitFor('CSINode to list csi.spiffe.io', async () => ((await csiNodeDrivers(env)).includes(DRIVER) ? true : undefined), 60_000);
    const n = JSON.parse(await kubectl(env, ['get', 'csinode', env.nodeName, '-o', 'json'])) as CsiNode;
    assert.equal(n.spec.drivers?.find((d) => d.name === DRIVER)?.nodeID, env.nodeName);
    assert.match(driver.out(), /Registered with the kubelet/);
  });

  it('mounts the socket directory read-only into a pod, and unmounts it when the pod is deleted', async () => {
    await applyManifest(env, podManifest(ns, 'workload', true));
    const pod = await waitPodRunning(env, ns, 'workload');
    const ls = await kubectl(env, ['exec', '-n', ns, 'workload', '--', 'ls', '-l', '/run/spire/sockets']);
    assert.match(ls, /^s.* spire-agent\.sock$/m, ls);
    assert.match(ls, / hello$/m, ls);
    assert.equal(await kubectl(env, ['exec', '-n', ns, 'workload', '--', 'cat', '/run/spire/sockets/hello']), 'from the host\n');
    const write = await kubectl(env, ['exec', '-n', ns, 'workload', '--', 'touch', '/run/spire/sockets/x']).then(
      () => 'wrote',
      (e: Error) => e.message,
    );
    assert.match(write, /Read-only file system/);
    assert.equal(existsSync(join(socketDir, 'x')), false);

    // On the host: the kubelet's target path is a read-only bind mount, published for this pod.
    const podDir = join(env.kubeletRoot, 'pods', pod.metadata.uid);
    const mounts = (await readMountInfo()).filter((e) => e.mountPoint.startsWith(`${podDir}/volumes/kubernetes.io~csi/`));
    assert.equal(mounts.length, 1, JSON.stringify(mounts));
    const target = mounts[0]!.mountPoint;
    assert.ok(target.endsWith('/spiffe-workload-api/mount'), target);
    assert.ok(mounts[0]!.options.includes('ro'), mounts[0]!.options.join(','));
    const published = driver
      .out()
      .split('\n')
      .filter((l) => l.includes('"msg":"Volume published"'));
    assert.ok(
      published.some((l) => l.includes(`"pod_namespace":"${ns}"`) && l.includes('"pod_name":"workload"')),
      published.join('\n'),
    );

    await kubectl(env, ['delete', 'pod', '-n', ns, 'workload', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
    await waitFor('the volume to be unmounted', async () => ((await readMountInfo()).some((e) => e.mountPoint === target) ? undefined : true), 60_000);
    await waitFor('the target directory to be removed', () => (existsSync(target) ? undefined : true), 30_000);
    assert.match(driver.out(), /Volume unpublished/);
    assert.ok(existsSync(join(socketDir, 'hello')), 'the socket directory is untouched');
  });

  it("a pod whose volume is not readOnly gets the driver's InvalidArgument text and no mount", async () => {
    await applyManifest(env, podManifest(ns, 'writable', false));
    const events = await waitFor(
      'a FailedMount event naming readOnly',
      async () => {
        const out = await kubectl(env, ['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=writable', '-o', 'json']);
        const items = (JSON.parse(out) as { items: Array<{ reason: string; message: string }> }).items;
        return items.some((e) => e.reason === 'FailedMount' && e.message.includes("pod.spec.volumes[].csi.readOnly must be set to 'true'")) ? items : undefined;
      },
      60_000,
    );
    assert.ok(events.length > 0);
    await kubectl(env, ['delete', 'pod', '-n', ns, 'writable', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
  });

  it('deploy/k8s/csi-driver.yaml is accepted by the apiserver (server-side dry run, strict field validation)', async () => {
    // In this test's namespace instead of `ztwim` (deploy/k8s/namespace.yaml's).
    const yaml = readFileSync(join(REPO_ROOT, 'deploy', 'k8s', 'csi-driver.yaml'), 'utf8').replaceAll('\n  namespace: ztwim\n', `\n  namespace: ${ns}\n`);
    assert.ok(yaml.includes(`namespace: ${ns}`));
    const out = await kubectl(env, ['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: yaml });
    for (const obj of ['serviceaccount/ztwim-csi-driver', `csidriver.storage.k8s.io/${DRIVER}`, 'daemonset.apps/ztwim-csi-driver']) {
      assert.match(out, new RegExp(`^${obj.replaceAll('.', '\\.')} .*\\(server dry run\\)$`, 'm'), out);
    }
  });

  it('SIGTERM removes its sockets and the kubelet deregisters the driver', async () => {
    const { code } = await stopProc(driver);
    assert.equal(code, 0, driver.out().slice(-4000));
    assert.equal(existsSync(join(env.kubeletRoot, 'plugins_registry', `${DRIVER}-reg.sock`)), false);
    assert.equal(existsSync(join(env.kubeletRoot, 'plugins', DRIVER, 'csi.sock')), false);
    await waitFor('CSINode to drop csi.spiffe.io', async () => ((await csiNodeDrivers(env)).includes(DRIVER) ? undefined : true), 60_000);
  });
});
