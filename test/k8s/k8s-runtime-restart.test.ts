// The informer rides out its apiserver being stopped and restarted (a control-plane-only cluster
// of this test's own: only its kube-apiserver is stopped), backing off while it is away, and sees
// the changes made before it reconnected; with etcd compacted meanwhile, its watch resourceVersion
// is gone and it lists again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createResourceClient, Informer, RESOURCES, type KubeObject, type ResourceClient } from '@ztwim/k8s';
import { waitFor } from './lib/cluster.ts';
import { startOwnControlPlane, type OwnControlPlane } from './lib/own-control-plane.ts';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

const CM = RESOURCES.configMaps;
const NS = 'k8s-runtime-restart';

function cm(name: string, v: string): ConfigMap {
  return { metadata: { name, namespace: NS, labels: { restart: 'yes' } }, data: { v } };
}

describe('k8s-runtime: the informer across an apiserver restart (own control plane)', () => {
  let cp: OwnControlPlane;
  let client: ResourceClient;

  before(async () => {
    cp = await startOwnControlPlane('ztwim-k8s-runtime-restart');
    client = await createResourceClient({ kind: 'kubeconfig', path: cp.env.kubeconfig }, { requestTimeoutMs: 5_000 });
    await client.create(RESOURCES.namespaces, { metadata: { name: NS } });
  });

  after(async () => {
    client?.transport.close();
    await cp?.down();
  });

  it('backs off while the apiserver is away, then resumes and sees what changed', async () => {
    await client.create(CM, cm('kept', '1'));
    await client.create(CM, cm('changed', '1'));
    await client.create(CM, cm('deleted', '1'));
    const informer = new Informer<ConfigMap>({
      client,
      resource: CM,
      namespace: NS,
      labelSelector: 'restart=yes',
      backoffInitialMs: 1_000,
      backoffMaxMs: 4_000,
    });
    const log: string[] = [];
    informer.addHandlers({
      onAdd: (o) => log.push(`add ${o.metadata.name}`),
      onUpdate: (a, b) => {
        if (a !== b) log.push(`update ${b.metadata.name} ${b.data?.['v']}`);
      },
      onDelete: (o) => log.push(`delete ${o.metadata.name}`),
    });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    try {
      await informer.waitForSync(AbortSignal.timeout(30_000));
      assert.equal(informer.store.size, 3);

      await cp.stopApiserver();
      await waitFor('the informer notices and retries', () => (informer.stats.retries >= 2 ? true : undefined), 30_000);
      // Compact etcd to its current revision while the apiserver is down: the informer's
      // resourceVersion is then older than anything the restarted apiserver can watch from.
      const status = JSON.parse(await cp.etcdctl(['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { header: { revision: number } } }>;
      const rev = status[0]?.Status.header.revision;
      assert.ok(rev !== undefined && rev > 0);
      await cp.etcdctl(['compact', String(rev)]);
      const retriesWhileAway = informer.stats.retries;

      await cp.upAgain();
      // Changes made as soon as the apiserver is back, while the informer is still backing off.
      await client.patch(CM, 'changed', { data: { v: '2' } }, 'merge', { namespace: NS });
      await client.delete(CM, 'deleted', { namespace: NS });
      await client.create(CM, cm('added', '1'));
      await waitFor(
        'the informer caught up',
        () => {
          const keys = [...informer.store.keys()].sort();
          return keys.join(',') === `${NS}/added,${NS}/changed,${NS}/kept` && informer.store.getByName(NS, 'changed')?.data?.['v'] === '2' ? true : undefined;
        },
        60_000,
      );
      assert.ok(retriesWhileAway >= 2, `retries while away: ${retriesWhileAway}`);
      assert.ok(log.includes(`update changed 2`) && log.includes('delete deleted') && log.includes('add added'), log.join('\n'));
      assert.ok(informer.stats.relistsOnGone >= 1 && informer.stats.lists >= 2, `relisted on 410 after the compaction: ${JSON.stringify(informer.stats)}`);

      // And it keeps watching afterwards.
      await client.create(CM, cm('after', '1'));
      await waitFor('a change after the restart', () => (informer.store.getByName(NS, 'after') !== undefined ? true : undefined), 30_000);
    } finally {
      stop.abort();
      await running;
    }
    console.log(`informer stats: ${JSON.stringify(informer.stats)}`);
  });
});
