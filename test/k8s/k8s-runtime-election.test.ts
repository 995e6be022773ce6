// Two LeaderElectors on one coordination.k8s.io/v1 Lease of the real apiserver (shared test
// cluster, a namespace of this test's own), with short timings so the test takes seconds.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createResourceClient, LeaderElector, RESOURCES, type Lease, type ResourceClient } from '@ztwim/k8s';
import { holdsFor } from '@ztwim/testkit';
import { createNamespace, ensureCluster, waitFor } from './lib/cluster.ts';

const TIMINGS = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 };

describe('k8s-runtime: leader election on a real Lease', () => {
  let client: ResourceClient;
  let ns: string;

  before(async () => {
    const env = await ensureCluster();
    client = await createResourceClient({ kind: 'kubeconfig', path: env.kubeconfig });
    ns = await createNamespace(env, 'k8s-runtime-election');
  });
  after(() => client?.transport.close());

  function start(identity: string, name: string, releaseOnCancel = true) {
    const stop = new AbortController();
    const events: string[] = [];
    const e = new LeaderElector({
      client,
      namespace: ns,
      name,
      identity,
      ...TIMINGS,
      releaseOnCancel,
      onStartedLeading: () => {
        events.push('started');
      },
      onStoppedLeading: () => events.push('stopped'),
    });
    const done = e.run(stop.signal);
    return { identity, e, stop, done, events };
  }

  async function holder(name: string): Promise<string> {
    return (await client.get<Lease>(RESOURCES.leases, name, ns)).spec?.holderIdentity ?? '';
  }

  it('exactly one of two leads; after the leader is killed the other takes over within leaseDuration', async () => {
    const a = start('replica-a', 'killed', false);
    const b = start('replica-b', 'killed', false);
    const first = await waitFor('a leader', () => (a.e.isLeader() ? a : b.e.isLeader() ? b : undefined), 20_000);
    const other = first === a ? b : a;
    // Over several renew periods (6 retry periods of 500 ms), only one leads and the Lease names it.
    await holdsFor('only the first replica leads', () => first.e.isLeader() && !other.e.isLeader(), { forMs: 6 * TIMINGS.retryPeriodMs });
    assert.equal(await holder('killed'), first.identity);
    const lease = await client.get<Lease>(RESOURCES.leases, 'killed', ns);
    assert.equal(lease.spec?.leaseDurationSeconds, 4);

    // "Killed": it stops renewing and does not release.
    first.stop.abort();
    await first.done;
    assert.equal(await holder('killed'), first.identity);
    const t0 = Date.now();
    await waitFor('the other replica leads', () => (other.e.isLeader() ? true : undefined), 15_000);
    const took = Date.now() - t0;
    assert.ok(took <= TIMINGS.leaseDurationMs + 2.2 * TIMINGS.retryPeriodMs + 1_000, `took over after ${took} ms`);
    assert.ok(took >= TIMINGS.leaseDurationMs - TIMINGS.retryPeriodMs * 2.2 - 500, `not before the lease expired: ${took} ms`);
    assert.equal(await holder('killed'), other.identity);
    assert.equal((await client.get<Lease>(RESOURCES.leases, 'killed', ns)).spec?.leaseTransitions, 1);
    other.stop.abort();
    await other.done;
  });

  it('after a clean release the other takes over at once (within a retry period)', async () => {
    const a = start('replica-a', 'released');
    await waitFor('a leads', () => (a.e.isLeader() ? true : undefined), 20_000);
    const b = start('replica-b', 'released');
    // three retry periods of b trying while a renews: b never leads
    await holdsFor('b does not lead while a holds the lease', () => !b.e.isLeader(), { forMs: 3 * TIMINGS.retryPeriodMs });
    a.stop.abort();
    await a.done;
    assert.deepEqual(a.events, ['started', 'stopped']);
    const t0 = Date.now();
    await waitFor('b leads', () => (b.e.isLeader() ? true : undefined), 15_000);
    const took = Date.now() - t0;
    assert.ok(took < 2.2 * TIMINGS.retryPeriodMs + 500, `took over after ${took} ms (lease duration is ${TIMINGS.leaseDurationMs} ms)`);
    b.stop.abort();
    await b.done;
    assert.equal(await holder('released'), '', 'b released it too: no holder');
  });
});
