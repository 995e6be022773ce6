import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText, silentLogger, ZtwimError } from '@ztwim/core';
import { buildServerConfig } from '../config/server-config.ts';
import { bundleData, K8sBundleNotifier, type ConfigMapClient, type K8sBundleNotifierConfig } from './k8s-bundle.ts';

const CONFIG: K8sBundleNotifierConfig = { namespace: 'spire', configMap: 'spire-bundle', configMapKey: 'bundle.crt', kubeConfigFilePath: '' };

/** An in-memory ConfigMap store with the apiserver's resourceVersion check on PATCH. */
function fakeClient(opts: { exists?: boolean; conflicts?: number } = {}) {
  let rv = 1;
  let data: Record<string, string> = { other: 'kept' };
  let conflicts = opts.conflicts ?? 0;
  const calls: string[] = [];
  const notFound = (): ZtwimError =>
    new ZtwimError('ERR_NOT_FOUND', 'k8s: get configmap spire/spire-bundle: 404 configmaps "spire-bundle" not found', { fields: { http_status: 404 } });
  const cm = () => ({ resourceVersion: String(rv) });
  const client: ConfigMapClient = {
    async getConfigMap(ns, name) {
      calls.push(`get ${ns}/${name}`);
      if (opts.exists === false) throw notFound();
      return cm();
    },
    async patchConfigMapData(ns, name, resourceVersion, d) {
      calls.push(`patch ${ns}/${name}@${resourceVersion}`);
      if (conflicts > 0) {
        conflicts--;
        rv++; // another writer got in
        throw new ZtwimError('ERR_INTERNAL', 'k8s: patch: 409 the object has been modified', { fields: { http_status: 409 } });
      }
      if (resourceVersion !== String(rv)) throw new Error('stale resourceVersion accepted by the fake');
      data = { ...data, ...d };
      rv++;
    },
  };
  return { client, calls, data: () => data };
}

/** bundleData only wraps bytes: 100 bytes make a block of two base64 lines. */
const LONG = new Uint8Array(Array.from({ length: 100 }, (_, i) => i));

describe('k8sbundle notifier', () => {
  it('bundleData is the roots as PEM CERTIFICATE blocks, 64-column base64, in order', () => {
    const a = LONG;
    const b = new Uint8Array([1, 2, 3]);
    const pem = bundleData([a, b]);
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+)\n-----END CERTIFICATE-----\n/g) ?? [];
    assert.equal(blocks.length, 2);
    assert.equal(blocks.join(''), pem);
    assert.ok(pem.split('\n').every((l) => l.length <= 64));
    assert.equal(Buffer.from((blocks[1] as string).split('\n')[1] as string, 'base64').toString('hex'), '010203');
    assert.equal(bundleData([]), '');
  });

  it('patches the key with the roots read after the GET, carrying its resourceVersion, keeping other keys', async () => {
    const f = fakeClient();
    const n = new K8sBundleNotifier({ client: f.client, config: CONFIG, log: silentLogger() });
    const roots = [new Uint8Array([9, 9, 9])];
    await n.notify('bundle loaded', async () => roots);
    assert.deepEqual(f.calls, ['get spire/spire-bundle', 'patch spire/spire-bundle@1']);
    assert.equal(f.data()['bundle.crt'], bundleData(roots));
    assert.equal(f.data()['other'], 'kept');
  });

  it('reads again and retries on 409 Conflict, up to 5 attempts', async () => {
    const f = fakeClient({ conflicts: 2 });
    const n = new K8sBundleNotifier({ client: f.client, config: CONFIG, log: silentLogger() });
    let fetched = 0;
    await n.notify('bundle updated', async () => {
      fetched++;
      return [new Uint8Array([fetched])];
    });
    assert.deepEqual(f.calls, [
      'get spire/spire-bundle',
      'patch spire/spire-bundle@1',
      'get spire/spire-bundle',
      'patch spire/spire-bundle@2',
      'get spire/spire-bundle',
      'patch spire/spire-bundle@3',
    ]);
    assert.equal(fetched, 3, 'the bundle is loaded after each GET');
    assert.equal(f.data()['bundle.crt'], bundleData([new Uint8Array([3])]));

    const g = fakeClient({ conflicts: 5 });
    const m = new K8sBundleNotifier({ client: g.client, config: CONFIG, log: silentLogger() });
    await assert.rejects(
      m.notify('bundle updated', async () => []),
      /notifier\(k8sbundle\): unable to patch object spire\/spire-bundle: .*409/,
    );
    assert.equal(g.calls.length, 10);
  });

  it('never creates the ConfigMap: a missing one is an error naming it', async () => {
    const f = fakeClient({ exists: false });
    const n = new K8sBundleNotifier({ client: f.client, config: CONFIG, log: silentLogger() });
    await assert.rejects(
      n.notify('bundle loaded', async () => []),
      (e: unknown) => {
        assert.ok(e instanceof ZtwimError);
        assert.equal(e.code, 'ERR_NOT_FOUND');
        assert.match(e.message, /^notifier\(k8sbundle\): unable to get object spire\/spire-bundle: .*not found/);
        return true;
      },
    );
    assert.deepEqual(f.calls, ['get spire/spire-bundle']);
  });

  it('writes in event order: a later event waits for the earlier write', async () => {
    const f = fakeClient();
    const n = new K8sBundleNotifier({ client: f.client, config: CONFIG, log: silentLogger() });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = n.notify('bundle loaded', async () => {
      await gate;
      return [new Uint8Array([1])];
    });
    const second = n.notify('bundle updated', async () => [new Uint8Array([2])]);
    release();
    await Promise.all([first, second]);
    assert.equal(f.data()['bundle.crt'], bundleData([new Uint8Array([2])]));
  });
});

describe('Notifier "k8sbundle" config', () => {
  /** The plugin block with `;` for newlines (the HCL reader wants one key per line). */
  const conf = (plugin: string): string => `server {
  trust_domain = "example.org"
  data_dir = "/tmp/x"
}
plugins {
  ${plugin.replaceAll(';', '\n')}
}`;
  const build = (plugin: string) => buildServerConfig(parseConfigText(conf(plugin), 'hcl'), 'server.conf', {}, '/etc/spire');

  it('SPIRE defaults: namespace spire, config map spire-bundle, key bundle.crt, in-cluster', () => {
    for (const p of ['Notifier "k8sbundle" { plugin_data {} }', 'Notifier "k8sbundle" {}', 'Notifier "k8sbundle" { plugin_data {; namespace = ""; } }']) {
      assert.deepEqual(build(p).notifiers?.k8sBundle, { namespace: 'spire', configMap: 'spire-bundle', configMapKey: 'bundle.crt', kubeConfigFilePath: '' }, p);
    }
  });

  it('takes namespace, config_map, config_map_key and kube_config_file_path (relative to the config)', () => {
    const c = build(
      'Notifier "k8sbundle" { plugin_data {; namespace = "ns1"; config_map = "cm"; config_map_key = "b.pem"; kube_config_file_path = "kube.yaml"; } }',
    );
    assert.deepEqual(c.notifiers?.k8sBundle, { namespace: 'ns1', configMap: 'cm', configMapKey: 'b.pem', kubeConfigFilePath: '/etc/spire/kube.yaml' });
  });

  it('no Notifier block: none configured; unknown notifier and unknown key refused', () => {
    assert.equal(build('').notifiers, undefined);
    assert.throws(() => build('Notifier "gcs_bundle" { plugin_data {} }'), /plugins\.Notifier\.gcs_bundle.*unknown Notifier plugin \(supported: k8sbundle\)/);
    assert.throws(
      () => build('Notifier "k8sbundle" { plugin_data {; namespaces = "x"; } }'),
      /plugins\.Notifier\.k8sbundle\.plugin_data\.namespaces.*unknown key/,
    );
  });

  it('webhook_label is accepted with a warning saying webhooks are not updated', () => {
    const c = build('Notifier "k8sbundle" { plugin_data {; webhook_label = "spiffe.io/webhook"; } }');
    assert.ok(
      c.warnings?.some((w) => /webhook_label.*webhook caBundles are not updated/.test(w)),
      String(c.warnings),
    );
  });
});
