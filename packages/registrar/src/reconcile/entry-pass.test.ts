import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { silentLogger } from '@ztwim/core';
import type { ClusterSPIFFEIDStats, ClusterStaticEntryStatus } from '../crd/types.ts';
import { parseTemplate } from '../template/index.ts';
import { arrayClusterView, type KubeJson } from './cluster-view.ts';
import { EntryReconciler, type EntryPassOptions, type StatusWriter } from './entry-pass.ts';
import { MemoryEntryClient } from './memory-entry-client.test-util.ts';
import { regEntry } from '../spire/reg-entry.test-util.ts';

const TD = 'example.org';
const signal = new AbortController().signal;

function ns(name: string, labels: Record<string, string> = {}): KubeJson {
  return { metadata: { name, uid: `ns-${name}`, labels } };
}
function node(name: string, uid: string): KubeJson {
  return { metadata: { name, uid, labels: {} }, spec: {} };
}
function pod(namespace: string, name: string, uid: string, labels: Record<string, string> = {}, nodeName = 'n1', sa = 'default'): KubeJson {
  return { metadata: { name, namespace, uid, labels }, spec: { nodeName, serviceAccountName: sa } };
}
let seq = 0;
function csid(name: string, spec: Record<string, unknown>, created = '2026-01-01T00:00:00Z'): KubeJson {
  seq++;
  return {
    apiVersion: 'spire.spiffe.io/v1alpha1',
    kind: 'ClusterSPIFFEID',
    metadata: { name, uid: `uid-${name}`, resourceVersion: String(seq), creationTimestamp: created },
    spec,
  };
}
function cse(name: string, spec: Record<string, unknown>, created = '2026-01-01T00:00:00Z'): KubeJson {
  seq++;
  return {
    apiVersion: 'spire.spiffe.io/v1alpha1',
    kind: 'ClusterStaticEntry',
    metadata: { name, uid: `uid-${name}`, resourceVersion: String(seq), creationTimestamp: created },
    spec,
  };
}

const SA_TEMPLATE = 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}';

class Statuses implements StatusWriter {
  readonly spiffe = new Map<string, ClusterSPIFFEIDStats>();
  readonly statics = new Map<string, ClusterStaticEntryStatus>();
  writes = 0;
  async clusterSPIFFEID(name: string, stats: ClusterSPIFFEIDStats): Promise<void> {
    this.writes++;
    this.spiffe.set(name, stats);
  }
  async clusterStaticEntry(name: string, status: ClusterStaticEntryStatus): Promise<void> {
    this.writes++;
    this.statics.set(name, status);
  }
}

interface World {
  namespaces: KubeJson[];
  pods: KubeJson[];
  nodes: KubeJson[];
  endpoints: KubeJson[];
  spiffeIds: KubeJson[];
  statics: KubeJson[];
}

function reconciler(world: World, server: MemoryEntryClient, status: Statuses | undefined, over: Partial<EntryPassOptions> = {}): EntryReconciler {
  let id = 0;
  return new EntryReconciler({
    trustDomain: TD,
    clusterName: 'c1',
    clusterDomain: 'cluster.local',
    ignoreNamespaces: [/kube-system/],
    parentIDTemplate: undefined,
    entries: server,
    view: arrayClusterView(world),
    crs: { clusterSPIFFEIDs: () => world.spiffeIds, clusterStaticEntries: () => world.statics },
    status,
    className: '',
    watchClassless: false,
    reconcileClusterSPIFFEIDs: true,
    reconcileClusterStaticEntries: true,
    entryIDPrefix: '',
    entryIDPrefixCleanup: undefined,
    newId: () => `u${++id}`,
    log: silentLogger(),
    ...over,
  });
}

describe('EntryReconciler', () => {
  let world: World;
  let server: MemoryEntryClient;
  let status: Statuses;
  beforeEach(() => {
    world = {
      namespaces: [ns('app', { team: 'a' }), ns('other'), ns('kube-system')],
      nodes: [node('n1', 'node-uid-1')],
      pods: [pod('app', 'web-1', 'p1', { app: 'web' }, 'n1', 'web'), pod('other', 'db-1', 'p2', { app: 'db' }), pod('kube-system', 'dns', 'p3')],
      endpoints: [],
      spiffeIds: [],
      statics: [],
    };
    server = new MemoryEntryClient();
    status = new Statuses();
  });

  it('declares one entry per selected pod with templated ID, agent parent, pod-uid selector and stats', async () => {
    world.spiffeIds.push(
      csid('sa', {
        spiffeIDTemplate: SA_TEMPLATE,
        workloadSelectorTemplates: ['k8s:ns:{{ .PodMeta.Namespace }}'],
        dnsNameTemplates: ['{{ .PodMeta.Name }}.example'],
        ttl: '1h',
        hint: 'h',
      }),
    );
    const s = await reconciler(world, server, status).pass(signal);
    assert.equal(s?.created, 2);
    const [web] = server.bySpiffeId('spiffe://example.org/ns/app/sa/web');
    assert.ok(web);
    assert.equal(web.parentId, 'spiffe://example.org/spire/agent/k8s_psat/c1/node-uid-1');
    assert.deepEqual(web.selectors, [
      { type: 'k8s', value: 'pod-uid:p1' },
      { type: 'k8s', value: 'ns:app' },
    ]);
    assert.deepEqual(web.dnsNames, ['web-1.example']);
    assert.equal(web.x509SvidTtl, 3600);
    assert.equal(web.hint, 'h');
    assert.equal(server.bySpiffeId('spiffe://example.org/ns/kube-system/sa/default').length, 0, 'ignored namespace');
    assert.deepEqual(status.spiffe.get('sa'), {
      namespacesSelected: 3,
      namespacesIgnored: 1,
      podsSelected: 2,
      podEntryRenderFailures: 0,
      entriesMasked: 0,
      entriesToSet: 2,
      entryFailures: 0,
    });
  });

  it('auto-populates DNS names from the Endpoints that target the pod', async () => {
    world.endpoints.push({
      metadata: { name: 'websvc', namespace: 'app' },
      subsets: [{ addresses: [{ ip: '10.0.0.1', targetRef: { kind: 'Pod', uid: 'p1' } }] }],
    });
    world.endpoints.push({
      metadata: { name: 'notme', namespace: 'app' },
      subsets: [{ addresses: [{ ip: '10.0.0.2', targetRef: { kind: 'Pod', uid: 'zz' } }] }],
    });
    world.spiffeIds.push(csid('sa', { spiffeIDTemplate: SA_TEMPLATE, autoPopulateDNSNames: true, dnsNameTemplates: ['websvc'] }));
    await reconciler(world, server, status).pass(signal);
    const [web] = server.bySpiffeId('spiffe://example.org/ns/app/sa/web');
    assert.deepEqual(web?.dnsNames, ['websvc', 'websvc.app', 'websvc.app.svc', 'websvc.app.svc.cluster.local']);
  });

  it('moves pods in and out with label changes and deletes entries of deleted pods', async () => {
    world.spiffeIds.push(csid('web', { spiffeIDTemplate: 'spiffe://example.org/web/{{ .PodMeta.Name }}', podSelector: { matchLabels: { app: 'web' } } }));
    const r = reconciler(world, server, status);
    await r.pass(signal);
    assert.deepEqual(
      [...server.entries.values()].map((e) => e.spiffeId),
      ['spiffe://example.org/web/web-1'],
    );
    world.pods[1] = pod('other', 'db-1', 'p2', { app: 'web' });
    await r.pass(signal);
    assert.equal(server.entries.size, 2);
    world.pods[0] = pod('app', 'web-1', 'p1', { app: 'none' }, 'n1', 'web');
    await r.pass(signal);
    assert.deepEqual(
      [...server.entries.values()].map((e) => e.spiffeId),
      ['spiffe://example.org/web/db-1'],
    );
    world.pods.splice(1, 1);
    const s = await r.pass(signal);
    assert.equal(server.entries.size, 0);
    assert.equal(s?.deleted, 1);
  });

  it('applies a fallback only to pods no other ClusterSPIFFEID matched', async () => {
    world.spiffeIds.push(csid('fallback', { spiffeIDTemplate: 'spiffe://example.org/fallback/{{ .PodMeta.Name }}', fallback: true }, '2020-01-01T00:00:00Z'));
    world.spiffeIds.push(csid('web', { spiffeIDTemplate: 'spiffe://example.org/web/{{ .PodMeta.Name }}', podSelector: { matchLabels: { app: 'web' } } }));
    await reconciler(world, server, status).pass(signal);
    assert.deepEqual([...server.entries.values()].map((e) => e.spiffeId).sort(), ['spiffe://example.org/fallback/db-1', 'spiffe://example.org/web/web-1']);
    assert.equal(status.spiffe.get('fallback')?.podsSelected, 1);
  });

  it('masks the younger of two ClusterSPIFFEIDs declaring the same entry and says so in status', async () => {
    world.spiffeIds.push(csid('young', { spiffeIDTemplate: SA_TEMPLATE, hint: 'young' }, '2026-02-01T00:00:00Z'));
    world.spiffeIds.push(csid('old', { spiffeIDTemplate: SA_TEMPLATE, hint: 'old' }, '2026-01-01T00:00:00Z'));
    await reconciler(world, server, status).pass(signal);
    assert.equal(server.entries.size, 2);
    assert.ok([...server.entries.values()].every((e) => e.hint === 'old'));
    assert.equal(status.spiffe.get('young')?.entriesMasked, 2);
    assert.equal(status.spiffe.get('young')?.entriesToSet, 0);
    assert.equal(status.spiffe.get('old')?.entriesToSet, 2);
  });

  it('is idempotent: a second pass changes nothing and writes no status', async () => {
    world.spiffeIds.push(csid('sa', { spiffeIDTemplate: SA_TEMPLATE }));
    const r = reconciler(world, server, status);
    await r.pass(signal);
    // the informer would now hold the written status
    world.spiffeIds[0] = { ...(world.spiffeIds[0] as KubeJson), status: { stats: status.spiffe.get('sa') } };
    const writes = status.writes;
    const s = await r.pass(signal);
    assert.deepEqual([s?.created, s?.updated, s?.deleted], [0, 0, 0]);
    assert.equal(status.writes, writes);
  });

  it('updates an entry whose mutable fields changed, keeping its id', async () => {
    world.spiffeIds.push(csid('sa', { spiffeIDTemplate: SA_TEMPLATE }));
    const r = reconciler(world, server, status);
    await r.pass(signal);
    const ids = [...server.entries.keys()].sort();
    world.spiffeIds[0] = csid('sa', { spiffeIDTemplate: SA_TEMPLATE, dnsNameTemplates: ['x.example'], jwtTtl: '5m' });
    const s = await r.pass(signal);
    assert.equal(s?.updated, 2);
    assert.deepEqual([...server.entries.keys()].sort(), ids);
    assert.ok([...server.entries.values()].every((e) => e.dnsNames[0] === 'x.example' && e.jwtSvidTtl === 300));
  });

  it('counts render failures', async () => {
    world.spiffeIds.push(csid('bad', { spiffeIDTemplate: 'spiffe://other.org/{{ .PodMeta.Name }}' }));
    await reconciler(world, server, status).pass(signal);
    assert.equal(server.entries.size, 0);
    assert.equal(status.spiffe.get('bad')?.podEntryRenderFailures, 2);
    world.spiffeIds = [csid('badsel', { spiffeIDTemplate: SA_TEMPLATE, workloadSelectorTemplates: ['{{ .PodMeta.Name }}'] })];
    await reconciler(world, server, status).pass(signal);
    assert.equal(server.entries.size, 0, 'a workload selector without a colon is a render failure');
    assert.equal(status.spiffe.get('badsel')?.podEntryRenderFailures, 2);
  });

  it('reconciles ClusterStaticEntries with rendered/masked/set status', async () => {
    const spec = { spiffeID: 'spiffe://example.org/static', parentID: 'spiffe://example.org/host', selectors: ['unix:uid:0'] };
    world.statics.push(cse('s1', spec, '2026-01-01T00:00:00Z'), cse('s2', { ...spec, hint: 'x' }, '2026-03-01T00:00:00Z'));
    await reconciler(world, server, status).pass(signal);
    assert.equal(server.entries.size, 1);
    assert.deepEqual(status.statics.get('s1'), { rendered: true, masked: false, set: true });
    assert.deepEqual(status.statics.get('s2'), { rendered: true, masked: true, set: false });
  });

  it('skips CRs that do not parse: no entries, a static one says rendered=false', async () => {
    world.spiffeIds.push(csid('broken', { spiffeIDTemplate: 'spiffe://example.org/{{ .PodMeta.Name ' }));
    world.statics.push(cse('nosel', { spiffeID: 'spiffe://example.org/s', parentID: 'spiffe://example.org/host' }));
    await reconciler(world, server, status).pass(signal);
    assert.equal(server.entries.size, 0);
    assert.equal(status.spiffe.has('broken'), false);
    assert.deepEqual(status.statics.get('nosel'), { rendered: false, masked: false, set: false });
  });

  it('leaves entries outside its prefix alone and cleans up the old prefix', async () => {
    await server.createEntries([
      regEntry({ id: 'manual', spiffeId: 'spiffe://example.org/manual', parentId: 'spiffe://example.org/host', selectors: [{ type: 'unix', value: 'uid:1' }] }),
      regEntry({ id: 'old.1', spiffeId: 'spiffe://example.org/old', parentId: 'spiffe://example.org/host', selectors: [{ type: 'unix', value: 'uid:2' }] }),
    ]);
    world.spiffeIds.push(csid('sa', { spiffeIDTemplate: SA_TEMPLATE }));
    await reconciler(world, server, status, { entryIDPrefix: 'reg.', entryIDPrefixCleanup: 'old.' }).pass(signal);
    const ids = [...server.entries.keys()].sort();
    assert.deepEqual(ids, ['manual', 'reg.u1', 'reg.u2']);
  });

  it('honours className and watchClassless', async () => {
    world.spiffeIds.push(csid('classless', { spiffeIDTemplate: 'spiffe://example.org/a/{{ .PodMeta.Name }}' }));
    world.spiffeIds.push(csid('mine', { spiffeIDTemplate: 'spiffe://example.org/b/{{ .PodMeta.Name }}', className: 'ztwim' }));
    world.spiffeIds.push(csid('theirs', { spiffeIDTemplate: 'spiffe://example.org/c/{{ .PodMeta.Name }}', className: 'other' }));
    await reconciler(world, server, status, { className: 'ztwim' }).pass(signal);
    assert.deepEqual([...new Set([...server.entries.values()].map((e) => e.spiffeId.split('/')[3]))], ['b']);
    server.entries.clear();
    await reconciler(world, server, status, { className: 'ztwim', watchClassless: true }).pass(signal);
    assert.deepEqual([...new Set([...server.entries.values()].map((e) => e.spiffeId.split('/')[3]))].sort(), ['a', 'b']);
  });

  it('skips the pass (touching nothing) when the server cannot be listed', async () => {
    world.spiffeIds.push(csid('sa', { spiffeIDTemplate: SA_TEMPLATE }));
    server.failNextList = true;
    const s = await reconciler(world, server, status).pass(signal);
    assert.equal(s, undefined);
    assert.equal(server.calls.create + server.calls.delete, 0);
    assert.equal(status.writes, 0);
  });

  it('uses the configured parentIDTemplate', async () => {
    world.spiffeIds.push(csid('sa', { spiffeIDTemplate: SA_TEMPLATE }));
    await reconciler(world, server, status, { parentIDTemplate: parseTemplate('spiffe://{{ .TrustDomain }}/node/{{ .NodeMeta.Name }}') }).pass(signal);
    assert.ok([...server.entries.values()].every((e) => e.parentId === 'spiffe://example.org/node/n1'));
  });

  describe('podPass (incremental)', () => {
    const state = (c: MemoryEntryClient): string[] =>
      [...c.entries.values()].map((e) => JSON.stringify({ ...e, id: '', selectors: [...e.selectors].sort((a, b) => a.value.localeCompare(b.value)) })).sort();

    it("leaves the server as a full pass would, touching only the pods' own entries", async () => {
      world.pods.push(pod('app', 'web-2', 'p4', { app: 'web' }, 'n1', 'web'));
      world.spiffeIds.push(csid('fallback', { spiffeIDTemplate: 'spiffe://example.org/fallback/{{ .PodMeta.Name }}', fallback: true }, '2020-01-01T00:00:00Z'));
      world.spiffeIds.push(csid('web', { spiffeIDTemplate: 'spiffe://example.org/web/{{ .PodMeta.Name }}', podSelector: { matchLabels: { app: 'web' } } }));
      world.spiffeIds.push(
        csid(
          'web-dup',
          { spiffeIDTemplate: 'spiffe://example.org/web/{{ .PodMeta.Name }}', podSelector: { matchLabels: { app: 'web' } } },
          '2026-03-01T00:00:00Z',
        ),
      );
      const r = reconciler(world, server, status);
      await r.pass(signal);
      const writesAfterFull = status.writes;
      // p1 leaves `web` (so the fallback takes it), p2 is deleted, p5 is new, p6 is in an ignored namespace.
      world.pods[0] = pod('app', 'web-1', 'p1', { app: 'none' }, 'n1', 'web');
      world.pods.splice(1, 1);
      world.pods.push(pod('app', 'web-3', 'p5', { app: 'web' }), pod('kube-system', 'x', 'p6', { app: 'web' }));
      const refs = [
        { namespace: 'app', name: 'web-1', uid: 'p1' },
        { namespace: 'other', name: 'db-1', uid: 'p2' },
        { namespace: 'app', name: 'web-3', uid: 'p5' },
        { namespace: 'kube-system', name: 'x', uid: 'p6' },
      ];
      const untouched = server.bySpiffeId('spiffe://example.org/web/web-2')[0];
      const lists = server.calls.list;
      const res = await r.podPass(refs, signal);
      assert.equal(res.needFull, false);
      assert.deepEqual(res.summary && { created: res.summary.created, deleted: res.summary.deleted }, { created: 2, deleted: 2 });
      assert.equal(server.calls.list, lists, 'no listing of every entry');
      assert.equal(server.calls.listOfPod, 4);
      assert.equal(status.writes, writesAfterFull, 'no status written by a pod pass');
      assert.deepEqual(server.bySpiffeId('spiffe://example.org/web/web-2')[0], untouched, 'other pods untouched');

      const fresh = new MemoryEntryClient();
      await reconciler(world, fresh, undefined).pass(signal);
      assert.deepEqual(state(server), state(fresh));
      assert.deepEqual(
        state(server)
          .map((e) => (JSON.parse(e) as { spiffeId: string }).spiffeId)
          .sort(),
        ['spiffe://example.org/fallback/web-1', 'spiffe://example.org/web/web-2', 'spiffe://example.org/web/web-3'],
      );
      // And the next full pass has nothing left to do.
      const full = await r.pass(signal);
      assert.deepEqual(full && [full.created, full.updated, full.deleted], [0, 0, 0]);
    });

    it('a pod recreated under the same name: the old uid loses its entry, the new one gets its own', async () => {
      world.spiffeIds.push(csid('web', { spiffeIDTemplate: 'spiffe://example.org/web/{{ .PodMeta.Name }}', podSelector: { matchLabels: { app: 'web' } } }));
      const r = reconciler(world, server, status);
      await r.pass(signal);
      world.pods[0] = pod('app', 'web-1', 'p1-new', { app: 'web' }, 'n1', 'web');
      await r.podPass(
        [
          { namespace: 'app', name: 'web-1', uid: 'p1' },
          { namespace: 'app', name: 'web-1', uid: 'p1-new' },
        ],
        signal,
      );
      assert.deepEqual(
        [...server.entries.values()].map((e) => e.selectors[0]?.value),
        ['pod-uid:p1-new'],
      );
    });

    it('asks for a full pass when a ClusterStaticEntry selects a pod uid, or the server cannot be listed', async () => {
      world.spiffeIds.push(csid('web', { spiffeIDTemplate: SA_TEMPLATE }));
      const r = reconciler(world, server, status);
      await r.pass(signal);
      const ref = [{ namespace: 'app', name: 'web-1', uid: 'p1' }];
      server.failNextList = true;
      assert.equal((await r.podPass(ref, signal)).needFull, true);
      world.statics.push(cse('pinned', { spiffeID: 'spiffe://example.org/pinned', parentID: 'spiffe://example.org/node', selectors: ['k8s:pod-uid:p1'] }));
      assert.equal((await r.podPass(ref, signal)).needFull, true);
      assert.equal((await reconciler(world, server, status, { reconcileClusterStaticEntries: false }).podPass(ref, signal)).needFull, false);
    });
  });
});
