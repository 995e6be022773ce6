// The server's `Notifier "k8sbundle"` on the real test cluster, beside SPIRE v1.13.0's:
//   - given the same plugin block (a ServiceAccount kubeconfig with only get/patch on the
//     ConfigMaps, as SPIRE's docs ask), ztwim server and spire-server each write their bundle's
//     roots into the same key, in the same format (`spire-server bundle show` / our bundle PEM),
//     keeping the ConfigMap's other keys;
//   - a CA rotation (prepared next CA) updates the ConfigMap with both roots;
//   - neither creates a missing ConfigMap: both refuse to start, naming it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { startServer, type RunningServer } from '@ztwim/server';
import { derToPem } from '@ztwim/spiffe';
import { tmpServerConfig } from '../interop/lib/ztwim-server.ts';
import { startSpireServer } from '../interop/lib/spire-server.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { applyManifest, createNamespace, ensureCluster, kubectl, serviceAccountKubeconfig, waitFor, type ClusterEnv } from './lib/cluster.ts';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n/g;

const notifierBlock = (ns: string, configMap: string, kubeconfig: string): string => `  Notifier "k8sbundle" {
    plugin_data {
      namespace = "${ns}"
      config_map = "${configMap}"
      kube_config_file_path = "${kubeconfig}"
    }
  }`;

describe('Notifier "k8sbundle" on the real cluster, beside spire-server v1.13.0', { timeout: 300_000 }, () => {
  let env: ClusterEnv;
  let ns: string;
  let tmp: TmpDir;
  let kubeconfig: string;

  const configMapData = async (name: string): Promise<Record<string, string>> =>
    (JSON.parse(await kubectl(env, ['get', 'configmap', '-n', ns, name, '-o', 'json'])) as { data?: Record<string, string> }).data ?? {};

  before(async () => {
    env = await ensureCluster();
    ns = await createNamespace(env, 'operator-runtime-bundle');
    tmp = makeTmpDir('ztwim-k8sbundle-');
    // SPIRE's documented RBAC for the notifier: get and patch the ConfigMap, nothing else.
    await applyManifest(
      env,
      `
apiVersion: v1
kind: ServiceAccount
metadata: {name: spire-server, namespace: ${ns}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: spire-bundle, namespace: ${ns}}
rules:
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [ztwim-bundle, spire-bundle, absent]
  verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: spire-bundle, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: spire-bundle}
subjects:
- {kind: ServiceAccount, name: spire-server, namespace: ${ns}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ztwim-bundle, namespace: ${ns}}
data: {other: kept}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: spire-bundle, namespace: ${ns}}
data: {other: kept}
`,
    );
    kubeconfig = await serviceAccountKubeconfig(env, ns, 'spire-server', tmp.file('spire-server.kubeconfig'));
  });

  after(() => tmp?.cleanup());

  const ztwimConfig = (name: string, configMap: string) => tmpServerConfig(tmp, name, { extraPlugins: notifierBlock(ns, configMap, kubeconfig) });

  it('ztwim server writes its roots on start and again when the CA rotates, keeping other keys', async () => {
    const clock = new FakeClock(Date.now());
    const server: RunningServer = await startServer(ztwimConfig('ztwim', 'ztwim-bundle'), { clock, log: silentLogger() });
    try {
      const rootsPem = async (): Promise<string> => (await server.bundle()).x509Authorities.map((a) => derToPem(a.asn1, 'CERTIFICATE')).join('');
      const data = await configMapData('ztwim-bundle');
      assert.equal(data['other'], 'kept');
      assert.equal(data['bundle.crt'], await rootsPem(), 'written before startServer resolved');
      assert.equal(data['bundle.crt']?.match(PEM_BLOCK)?.length, 1);

      // Past half the CA's lifetime the next CA is prepared and joins the bundle.
      clock.advance(12 * 3600_000 + 60_000);
      const two = await waitFor(
        'the ConfigMap with two roots',
        async () => {
          const d = (await configMapData('ztwim-bundle'))['bundle.crt'] ?? '';
          return (d.match(PEM_BLOCK)?.length ?? 0) === 2 ? d : undefined;
        },
        30_000,
      );
      assert.equal(two, await rootsPem());
      assert.equal((await configMapData('ztwim-bundle'))['other'], 'kept');
    } finally {
      await server.close();
    }
  });

  it('spire-server given the same block writes the same key in the same format', async () => {
    const spire = await startSpireServer(tmp, { extraPlugins: notifierBlock(ns, 'spire-bundle', kubeconfig) });
    try {
      const shown = spire.cli(['bundle', 'show']);
      const written = await waitFor("spire-server's bundle.crt", async () => (await configMapData('spire-bundle'))['bundle.crt'], 30_000);
      assert.equal(written, shown, 'spire-server writes its roots as `bundle show` prints them');
      assert.equal(written.match(PEM_BLOCK)?.join(''), written, 'only 64-column PEM CERTIFICATE blocks');
      assert.deepEqual(Object.keys(await configMapData('spire-bundle')).sort(), ['bundle.crt', 'other']);
      const ours = (await configMapData('ztwim-bundle'))['bundle.crt'] ?? '';
      assert.equal(ours.match(PEM_BLOCK)?.join(''), ours, 'ours: the same 64-column PEM CERTIFICATE blocks');
    } finally {
      await spire.stop();
    }
  });

  it('a missing ConfigMap is not created: both servers refuse to start, naming it', async () => {
    await assert.rejects(
      startServer(ztwimConfig('ztwim-absent', 'absent'), { log: silentLogger() }),
      new RegExp(`notifier\\(k8sbundle\\): unable to get object ${ns}/absent: .*404 configmaps "absent" not found`),
    );
    const spireTmp = makeTmpDir('ztwim-k8sbundle-spire-');
    try {
      await assert.rejects(
        startSpireServer(spireTmp, { extraPlugins: notifierBlock(ns, 'absent', kubeconfig) }),
        (e: Error) => /exited/.test(e.message) && /configmaps \\?"absent\\?" not found/.test(e.message),
      );
    } finally {
      spireTmp.cleanup();
    }
    await assert.rejects(kubectl(env, ['get', 'configmap', '-n', ns, 'absent']), /NotFound|not found/);
  });
});
