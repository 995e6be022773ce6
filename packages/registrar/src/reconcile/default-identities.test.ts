// deploy/k8s/registrar/: the shipped default identities and config parse, and do what §4.4 says.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { silentLogger } from '@ztwim/core';
import { parseManagerConfig } from '../config/manager-config.ts';
import { arrayClusterView, type KubeJson } from './cluster-view.ts';
import { EntryReconciler } from './entry-pass.ts';
import { MemoryEntryClient } from './memory-entry-client.test-util.ts';

const DEPLOY = new URL('../../../../deploy/k8s/registrar/', import.meta.url);

describe('deploy/k8s/registrar', () => {
  it('config.yaml is a valid ControllerManagerConfig', () => {
    const c = parseManagerConfig(readFileSync(new URL('config.yaml', DEPLOY), 'utf8'));
    assert.equal(c.className, 'zero-trust-workload-identity-manager-spire');
    assert.equal(c.entryIDPrefix, 'ztwim.');
    assert.equal(c.leaderElection.leaderElect, true);
  });

  it('default identities: the OIDC provider gets its entry, every other pod the fallback', async () => {
    const crs = parseAllDocuments(readFileSync(new URL('default-identities.yaml', DEPLOY), 'utf8')).map((d, i) => {
      const o = d.toJS() as KubeJson;
      return { ...o, metadata: { ...o.metadata, uid: `u${i}`, resourceVersion: '1', creationTimestamp: '2026-01-01T00:00:00Z' } };
    });
    assert.equal(crs.length, 2);
    const oidcLabels = {
      'app.kubernetes.io/name': 'spiffe-oidc-discovery-provider',
      'app.kubernetes.io/instance': 'cluster-zero-trust-workload-identity-manager',
      'app.kubernetes.io/component': 'discovery',
    };
    const pod = (ns: string, name: string, uid: string, sa: string, labels: Record<string, string> = {}): KubeJson => ({
      metadata: { name, namespace: ns, uid, labels },
      spec: { nodeName: 'n1', serviceAccountName: sa },
    });
    const server = new MemoryEntryClient();
    const r = new EntryReconciler({
      trustDomain: 'example.org',
      clusterName: 'c',
      clusterDomain: 'cluster.local',
      ignoreNamespaces: [],
      parentIDTemplate: undefined,
      entries: server,
      view: arrayClusterView({
        namespaces: ['ztwim', 'demo'].map((n) => ({ metadata: { name: n, labels: { 'kubernetes.io/metadata.name': n } } })),
        nodes: [{ metadata: { name: 'n1', uid: 'nu' }, spec: {} }],
        pods: [
          pod('ztwim', 'oidc', 'p1', 'spire-spiffe-oidc-discovery-provider', oidcLabels),
          pod('ztwim', 'server', 'p2', 'spire-server'),
          pod('demo', 'app', 'p3', 'client'),
        ],
        endpoints: [
          {
            metadata: { name: 'spire-spiffe-oidc-discovery-provider', namespace: 'ztwim' },
            subsets: [{ addresses: [{ targetRef: { kind: 'Pod', uid: 'p1' } }] }],
          },
        ],
      }),
      crs: { clusterSPIFFEIDs: () => crs, clusterStaticEntries: () => [] },
      status: undefined,
      className: 'zero-trust-workload-identity-manager-spire',
      watchClassless: false,
      reconcileClusterSPIFFEIDs: true,
      reconcileClusterStaticEntries: true,
      entryIDPrefix: '',
      entryIDPrefixCleanup: undefined,
      newId: () => 'x',
      log: silentLogger(),
    });
    await r.pass(new AbortController().signal);
    const byPod = new Map([...server.entries.values()].map((e) => [e.selectors[0]?.value, e]));
    const oidc = byPod.get('pod-uid:p1');
    assert.equal(oidc?.spiffeId, 'spiffe://example.org/ns/ztwim/sa/spire-spiffe-oidc-discovery-provider');
    assert.equal(oidc?.hint, 'oidc-discovery-provider');
    assert.deepEqual(oidc?.dnsNames, [
      'oidc-discovery.example.org',
      'spire-spiffe-oidc-discovery-provider',
      'spire-spiffe-oidc-discovery-provider.ztwim',
      'spire-spiffe-oidc-discovery-provider.ztwim.svc',
      'spire-spiffe-oidc-discovery-provider.ztwim.svc.cluster.local',
    ]);
    assert.equal(byPod.get('pod-uid:p2'), undefined, 'the operand namespace gets no fallback');
    assert.equal(byPod.get('pod-uid:p3')?.spiffeId, 'spiffe://example.org/ns/demo/sa/client');
    assert.equal(byPod.get('pod-uid:p3')?.hint, 'default');
  });
});
