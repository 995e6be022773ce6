// The registrar's reconcile pass against a real spire-server v1.13.0 and against ztwim server
// (one test body, two servers): entries land through the Entry API over the admin socket, a
// second pass is a no-op, changes update in place, surplus entries go, join-token aliases and
// entries outside the registrar's prefix stay, and a registrar that died mid-apply converges on
// restart with no duplicate and no lost entry. The cluster side is a plain in-memory view here;
// test/k8s/registrar-*.test.ts runs the same against a real API server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@ztwim/core';
import { arrayClusterView, dialEntryClient, EntryReconciler, type EntryClient, type KubeJson, type RegEntry } from '@ztwim/registrar';
import { startSpireAdminServer, type AdminServer } from './lib/spire-admin.ts';
import { startZtwimAdminServer } from './lib/ztwim-server.ts';

const TD = 'example.org';
const signal = new AbortController().signal;

function pods(n: number, label = 'web'): KubeJson[] {
  return Array.from({ length: n }, (_, i) => ({
    metadata: { name: `pod-${i}`, namespace: 'app', uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, labels: { app: label } },
    spec: { nodeName: 'n1', serviceAccountName: `sa-${i % 3}` },
  }));
}

interface World {
  pods: KubeJson[];
  spiffeIds: KubeJson[];
  statics: KubeJson[];
}

function reconciler(world: World, entries: EntryClient, prefix = 'reg.'): EntryReconciler {
  let n = 0;
  return new EntryReconciler({
    trustDomain: TD,
    clusterName: 'test',
    clusterDomain: 'cluster.local',
    ignoreNamespaces: [],
    parentIDTemplate: undefined,
    entries,
    view: arrayClusterView({
      namespaces: [{ metadata: { name: 'app', labels: {} } }],
      nodes: [{ metadata: { name: 'n1', uid: 'node-uid-1' }, spec: {} }],
      pods: world.pods,
    }),
    crs: { clusterSPIFFEIDs: () => world.spiffeIds, clusterStaticEntries: () => world.statics },
    status: undefined,
    className: '',
    watchClassless: false,
    reconcileClusterSPIFFEIDs: true,
    reconcileClusterStaticEntries: true,
    entryIDPrefix: prefix,
    entryIDPrefixCleanup: undefined,
    newId: () => `${process.pid}-${Date.now()}-${++n}`,
    log: silentLogger(),
  });
}

function csid(name: string, spec: Record<string, unknown>): KubeJson {
  return { metadata: { name, uid: `uid-${name}`, resourceVersion: String(Math.random()), creationTimestamp: '2026-01-01T00:00:00Z' }, spec };
}

/** Fails every create batch after the first `okBatches` (the registrar "dies" mid-apply). */
function dyingAfter(inner: EntryClient, okBatches: number): EntryClient {
  let batches = 0;
  return {
    listEntries: (s) => inner.listEntries(s),
    listEntriesOfPod: (uid, s) => inner.listEntriesOfPod(uid, s),
    createEntries: async (es, s) => {
      const out = [];
      for (let i = 0; i < es.length; i += 10) {
        if (batches++ >= okBatches) throw new Error('registrar killed');
        out.push(...(await inner.createEntries(es.slice(i, i + 10), s)));
      }
      return out;
    },
    updateEntries: (es, s) => inner.updateEntries(es, s),
    deleteEntries: (ids, s) => inner.deleteEntries(ids, s),
  };
}

for (const kind of ['spire', 'ztwim'] as const) {
  describe(`registrar reconcile against ${kind === 'spire' ? 'spire-server v1.13.0' : 'ztwim server'}`, () => {
    let srv: AdminServer;
    let client: ReturnType<typeof dialEntryClient>;

    before(async () => {
      srv = kind === 'spire' ? await startSpireAdminServer({ trustDomain: TD }) : await startZtwimAdminServer({ trustDomain: TD });
      client = dialEntryClient(srv.socketPath);
    });
    after(async () => {
      client?.close();
      await srv?.stop();
    });

    const ours = async (): Promise<RegEntry[]> => (await client.listEntries()).filter((e) => e.id.startsWith('reg.'));

    it('creates, keeps, updates and deletes entries; leaves foreign ones alone', async () => {
      // a hand-made entry and a join-token alias outside the prefix
      const manual = await srv.spireCli([
        'entry',
        'create',
        '-socketPath',
        srv.socketPath,
        '-parentID',
        `spiffe://${TD}/host`,
        '-spiffeID',
        `spiffe://${TD}/manual`,
        '-selector',
        'unix:uid:1',
      ]);
      assert.equal(manual.status, 0, manual.stderr);
      const world: World = {
        pods: pods(120),
        spiffeIds: [
          csid('sa', {
            spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}',
            dnsNameTemplates: ['{{ .PodMeta.Name }}.app.svc'],
          }),
        ],
        statics: [
          {
            metadata: { name: 'st', uid: 'uid-st', resourceVersion: '1', creationTimestamp: '2026-01-01T00:00:00Z' },
            spec: {
              spiffeID: `spiffe://${TD}/static`,
              parentID: `spiffe://${TD}/host`,
              selectors: ['unix:uid:0'],
              hint: 'static',
              x509SVIDTTL: '30m',
              storeSVID: true,
            },
          },
        ],
      };
      const r = reconciler(world, client);
      const s1 = await r.pass(signal);
      assert.deepEqual([s1?.created, s1?.failures], [121, 0]);
      const got = await ours();
      assert.equal(got.length, 121);
      const p0 = got.find((e) => e.selectors.some((x) => x.value === 'pod-uid:00000000-0000-0000-0000-000000000000'));
      assert.equal(p0?.spiffeId, `spiffe://${TD}/ns/app/sa/sa-0`);
      assert.equal(p0?.parentId, `spiffe://${TD}/spire/agent/k8s_psat/test/node-uid-1`);
      assert.deepEqual(p0?.dnsNames, ['pod-0.app.svc']);
      const st = got.find((e) => e.spiffeId === `spiffe://${TD}/static`);
      assert.deepEqual([st?.hint, st?.x509SvidTtl, st?.storeSvid], ['static', 1800, true]);

      const s2 = await r.pass(signal);
      assert.deepEqual([s2?.created, s2?.updated, s2?.deleted], [0, 0, 0]);

      world.spiffeIds = [
        csid('sa', {
          spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}',
          dnsNameTemplates: ['{{ .PodMeta.Name }}.changed'],
          hint: 'h',
        }),
      ];
      world.pods.splice(0, world.pods.length, ...pods(100));
      const s3 = await r.pass(signal);
      assert.deepEqual([s3?.created, s3?.updated, s3?.deleted, s3?.failures], [0, 100, 20, 0]);
      const after3 = await ours();
      assert.equal(after3.length, 101);
      assert.ok(after3.filter((e) => e.hint === 'h').every((e) => e.dnsNames[0]?.endsWith('.changed')));
      assert.deepEqual(new Set(got.map((e) => e.id)).size, 121);
      assert.ok(
        after3.every((e) => got.some((g) => g.id === e.id)),
        'updated in place: ids kept',
      );

      const all = await client.listEntries();
      assert.ok(
        all.some((e) => e.spiffeId === `spiffe://${TD}/manual`),
        'entry outside the prefix kept',
      );

      // A pod pass: the server's by_selectors SUPERSET filter finds exactly a pod's entries.
      const uid = (i: number): string => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`;
      assert.deepEqual(
        (await client.listEntriesOfPod(uid(7))).map((e) => e.selectors.find((x) => x.value.startsWith('pod-uid:'))?.value),
        [`pod-uid:${uid(7)}`],
      );
      const gone = world.pods.splice(7, 1)[0] as KubeJson;
      world.pods.push({
        metadata: { name: 'pod-new', namespace: 'app', uid: uid(999), labels: { app: 'web' } },
        spec: { nodeName: 'n1', serviceAccountName: 'sa-new' },
      });
      const before4 = await ours();
      const s4 = await r.podPass(
        [
          { namespace: 'app', name: 'pod-7', uid: uid(7) },
          { namespace: 'app', name: 'pod-new', uid: uid(999) },
        ],
        signal,
      );
      assert.deepEqual([s4.needFull, s4.summary?.created, s4.summary?.deleted, s4.summary?.failures], [false, 1, 1, 0]);
      const after4 = await ours();
      assert.equal(after4.length, before4.length);
      assert.ok(!after4.some((e) => e.selectors.some((x) => x.value === `pod-uid:${gone.metadata?.uid ?? ''}`)));
      assert.equal(after4.find((e) => e.selectors.some((x) => x.value === `pod-uid:${uid(999)}`))?.spiffeId, `spiffe://${TD}/ns/app/sa/sa-new`);
      const s5 = await r.pass(signal);
      assert.deepEqual([s5?.created, s5?.updated, s5?.deleted], [0, 0, 0], 'a full pass after it has nothing to do');
    });

    it('converges after dying mid-apply: no duplicate, no lost entry', async () => {
      const world: World = {
        pods: pods(200, 'burst'),
        spiffeIds: [csid('burst', { spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/burst/{{ .PodMeta.Name }}' })],
        statics: [],
      };
      await reconciler(world, dyingAfter(client, 3)).pass(signal);
      const partial = (await ours()).filter((e) => e.spiffeId.includes('/burst/'));
      assert.ok(partial.length > 0 && partial.length < 200, `partial apply left ${partial.length}`);
      const s = await reconciler(world, client).pass(signal);
      assert.equal(s?.failures, 0);
      const burst = (await ours()).filter((e) => e.spiffeId.includes('/burst/'));
      assert.equal(burst.length, 200);
      assert.equal(new Set(burst.map((e) => e.spiffeId)).size, 200);
      assert.ok(
        partial.every((p) => burst.some((b) => b.id === p.id)),
        'entries from before the crash kept their ids',
      );
      // everything gone when the CRs are
      const s2 = await reconciler({ pods: [], spiffeIds: [], statics: [] }, client).pass(signal);
      assert.equal(s2?.failures, 0);
      assert.equal((await ours()).length, 0);
      assert.ok((await client.listEntries()).some((e) => e.spiffeId === `spiffe://${TD}/manual`));
    });
  });
}
