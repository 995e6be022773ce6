import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '@ztwim/core';
import { syncCaBundles, type WebhookConfigurationStore } from './ca-bundle-patcher.ts';

class FakeStore implements WebhookConfigurationStore {
  readonly configs = new Map<string, Array<{ name: string; caBundle: string }>>();
  readonly writes: string[] = [];
  async get(name: string) {
    const w = this.configs.get(name);
    return w === undefined ? undefined : { webhooks: w.map((x) => ({ ...x })) };
  }
  async setCaBundle(name: string, index: number, webhookName: string, caBundle: string) {
    const w = this.configs.get(name)?.[index];
    if (w === undefined || w.name !== webhookName) throw new Error('test failed: webhook moved');
    w.caBundle = caBundle;
    this.writes.push(`${name}/${webhookName}`);
  }
}

const PEM1 = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
const PEM2 = '-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('syncCaBundles', () => {
  it('writes every differing webhook of every named configuration, only when it differs', async () => {
    const store = new FakeStore();
    store.configs.set('spire-a', [
      { name: 'vclusterspiffeid.kb.io', caBundle: '' },
      { name: 'vclusterfederatedtrustdomain.kb.io', caBundle: b64(PEM1) },
    ]);
    store.configs.set('other', [{ name: 'x', caBundle: '' }]);
    let roots = PEM1;
    const opts = { configurationNames: ['spire-a', 'missing'], store, rootsPem: async () => roots, log: silentLogger() };
    assert.equal(await syncCaBundles(opts), 1);
    assert.deepEqual(store.writes, ['spire-a/vclusterspiffeid.kb.io']);
    assert.equal(await syncCaBundles(opts), 0, 'no write when nothing changed');
    roots = PEM2;
    assert.equal(await syncCaBundles(opts), 2);
    assert.deepEqual(
      store.configs.get('spire-a')?.map((w) => w.caBundle),
      [b64(PEM2), b64(PEM2)],
    );
    assert.deepEqual(store.configs.get('other'), [{ name: 'x', caBundle: '' }], 'configurations not named are left alone');
  });
  it('refuses to publish an empty bundle', async () => {
    const store = new FakeStore();
    store.configs.set('c', [{ name: 'w', caBundle: b64(PEM1) }]);
    await assert.rejects(syncCaBundles({ configurationNames: ['c'], store, rootsPem: async () => '', log: silentLogger() }), /no X\.509 roots/);
    assert.equal(store.configs.get('c')?.[0]?.caBundle, b64(PEM1));
  });
});
