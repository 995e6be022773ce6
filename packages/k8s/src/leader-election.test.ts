import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ZtwimError } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { KubeApiError } from './api-errors.ts';
import { LeaderElector, type Lease, type LeaseClient } from './leader-election.ts';
import type { KubeObject } from './objects.ts';

/** Leases in memory with the apiserver's optimistic concurrency (resourceVersion on PUT). */
class FakeLeases implements LeaseClient {
  readonly description = 'fake';
  lease: Lease | undefined;
  rv = 1;
  /** While true every call fails as if the apiserver were away. */
  down = false;
  writes = 0;

  async get<T extends KubeObject>(): Promise<T> {
    if (this.down) throw new ZtwimError('ERR_UNAVAILABLE', 'ECONNREFUSED');
    if (this.lease === undefined) throw new KubeApiError('ERR_NOT_FOUND', 'not found', 404, 'NotFound');
    return structuredClone(this.lease) as unknown as T;
  }

  async create<T extends KubeObject>(_r: unknown, o: T): Promise<T> {
    if (this.down) throw new ZtwimError('ERR_UNAVAILABLE', 'ECONNREFUSED');
    if (this.lease !== undefined) throw new KubeApiError('ERR_ALREADY_EXISTS', 'exists', 409, 'AlreadyExists');
    this.writes++;
    this.lease = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++this.rv) } } as Lease;
    return structuredClone(this.lease) as unknown as T;
  }

  async replace<T extends KubeObject>(_r: unknown, o: T): Promise<T> {
    if (this.down) throw new ZtwimError('ERR_UNAVAILABLE', 'ECONNREFUSED');
    if (o.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new KubeApiError('ERR_CONFLICT', 'conflict', 409, 'Conflict');
    this.writes++;
    this.lease = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++this.rv) } } as Lease;
    return structuredClone(this.lease) as unknown as T;
  }

  get holder(): string {
    return this.lease?.spec?.holderIdentity ?? '';
  }
}

const lowRandom = (n: number): Uint8Array => new Uint8Array(n);

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Advances the fake clock in small steps, letting the electors' promises run, until `until` or `maxMs`. */
async function advanceUntil(clock: FakeClock, until: () => boolean, maxMs: number, step = 100): Promise<number> {
  const t0 = clock.nowMs();
  await settle();
  while (!until()) {
    if (clock.nowMs() - t0 >= maxMs) throw new Error(`condition not met within ${maxMs} ms`);
    clock.advance(step);
    await settle();
  }
  return clock.nowMs() - t0;
}

function candidate(leases: FakeLeases, clock: FakeClock, identity: string, log: string[], extra: { releaseOnCancel?: boolean } = {}) {
  const stop = new AbortController();
  let leaderSignal: AbortSignal | undefined;
  const e = new LeaderElector({
    client: leases,
    namespace: 'ns',
    name: 'lock',
    identity,
    clock,
    random: lowRandom,
    ...extra,
    onStartedLeading: (s) => {
      leaderSignal = s;
      log.push(`${identity} started`);
    },
    onStoppedLeading: () => log.push(`${identity} stopped`),
  });
  const done = e.run(stop.signal);
  return {
    e,
    stop,
    done,
    get leaderSignal() {
      return leaderSignal;
    },
  };
}

/** Lets the clock run for ms, in steps, with the electors' promises running in between. */
async function runFor(clock: FakeClock, ms: number): Promise<void> {
  await advanceUntil(clock, () => false, ms).catch(() => undefined);
}

/** Candidate a, then b a moment later, on one Lease; `warmupMs` of fake time run afterwards. */
async function twoCandidates(warmupMs: number, aOptions: { releaseOnCancel?: boolean } = {}) {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const log: string[] = [];
  const a = candidate(leases, clock, 'a', log, aOptions);
  await settle();
  const b = candidate(leases, clock, 'b', log);
  await runFor(clock, warmupMs);
  return { clock, leases, log, a, b };
}

describe('LeaderElector (FakeClock)', () => {
  it('exactly one of two candidates leads; the leader renews every retryPeriod', async () => {
    const { clock, leases, log, a, b } = await twoCandidates(0);
    assert.deepEqual(log, ['a started']);
    assert.equal(a.e.isLeader(), true);
    assert.equal(b.e.isLeader(), false);
    assert.equal(leases.holder, 'a');
    assert.equal(leases.lease?.spec?.leaseDurationSeconds, 15);
    assert.equal(leases.lease?.spec?.leaseTransitions, 0);
    assert.match(leases.lease?.spec?.renewTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // 60 s later: a has renewed about every 2 s, b never took over.
    const writes = leases.writes;
    await runFor(clock, 60_000);
    assert.ok(leases.writes - writes >= 29 && leases.writes - writes <= 31, `renewals in 60 s: ${leases.writes - writes}`);
    assert.deepEqual(log, ['a started']);
    assert.equal(b.e.leader, 'a');
    a.stop.abort();
    b.stop.abort();
    await Promise.all([a.done, b.done]);
  });

  it('a clean stop releases the lease and the other candidate takes over at its next try', async () => {
    const { clock, leases, log, a, b } = await twoCandidates(5_000);
    a.stop.abort();
    await a.done;
    assert.equal(a.leaderSignal?.aborted, true);
    assert.equal(leases.holder, '', 'released: no holder');
    const took = await advanceUntil(clock, () => b.e.isLeader(), 15_000);
    assert.ok(took <= 2_000 * 2.2, `b took over after ${took} ms (at most one jittered retry period)`);
    assert.deepEqual(log, ['a started', 'a stopped', 'b started']);
    assert.equal(leases.lease?.spec?.leaseTransitions, 1);
    b.stop.abort();
    await b.done;
  });

  it('when the leader dies without releasing, the other takes over once the lease has not changed for leaseDuration', async () => {
    const { clock, leases, b, a } = await twoCandidates(5_000, { releaseOnCancel: false });
    a.stop.abort(); // a "killed": it stops renewing and does not release
    await a.done;
    assert.equal(leases.holder, 'a');
    const took = await advanceUntil(clock, () => b.e.isLeader(), 30_000);
    assert.ok(took >= 15_000 - 2_000 && took <= 15_000 + 2_000 * 2.2, `took over after ${took} ms`);
    assert.equal(leases.holder, 'b');
    b.stop.abort();
    await b.done;
  });

  it('a leader that cannot renew within renewDeadline stops leading (and its leadership signal aborts)', async () => {
    const clock = new FakeClock();
    const leases = new FakeLeases();
    const log: string[] = [];
    const a = candidate(leases, clock, 'a', log);
    await advanceUntil(clock, () => a.e.isLeader(), 1_000);
    leases.down = true;
    const t0 = clock.nowMs();
    await advanceUntil(clock, () => !a.e.isLeader(), 30_000);
    const lostAfter = clock.nowMs() - t0;
    // The next renewal is due within retryPeriod; it is retried for renewDeadline (10 s), never past leaseDuration.
    assert.ok(lostAfter >= 10_000 && lostAfter <= 12_100, `lost after ${lostAfter} ms`);
    assert.ok(lostAfter < 15_000, 'stops before another candidate may take over');
    await a.done;
    assert.deepEqual(log, ['a started', 'a stopped']);
    assert.equal(a.leaderSignal?.aborted, true);
  });

  it('a leader whose lease another candidate took (conflicting writes) stops leading', async () => {
    const clock = new FakeClock();
    const leases = new FakeLeases();
    const log: string[] = [];
    const a = candidate(leases, clock, 'a', log);
    await advanceUntil(clock, () => a.e.isLeader(), 1_000);
    // Someone else writes the lease as its holder (e.g. an operator with a skewed view); a sees it held.
    leases.lease = {
      ...leases.lease!,
      metadata: { ...leases.lease!.metadata, resourceVersion: String(++leases.rv) },
      spec: { ...leases.lease!.spec, holderIdentity: 'intruder', renewTime: '2026-01-01T00:00:00.000000Z' },
    };
    await advanceUntil(clock, () => !a.e.isLeader(), 15_000);
    await a.done;
    assert.equal(leases.holder, 'intruder');
    assert.deepEqual(log, ['a started', 'a stopped']);
  });

  it('an async onStartedLeading that rejects is logged; leadership goes on', async () => {
    const clock = new FakeClock();
    const leases = new FakeLeases();
    const stop = new AbortController();
    const e = new LeaderElector({
      client: leases,
      namespace: 'ns',
      name: 'lock',
      identity: 'a',
      clock,
      random: lowRandom,
      onStartedLeading: async () => {
        throw new Error('controller failed to start');
      },
    });
    const done = e.run(stop.signal);
    await runFor(clock, 10_000);
    assert.equal(e.isLeader(), true);
    assert.equal(leases.holder, 'a');
    stop.abort();
    await done;
  });

  it('refuses timings client-go refuses', () => {
    const base = { client: new FakeLeases(), namespace: 'ns', name: 'l', identity: 'x', onStartedLeading: () => undefined };
    assert.throws(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }), /leaseDuration must be greater than renewDeadline/);
    assert.throws(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), /renewDeadline must be greater/);
    assert.throws(() => new LeaderElector({ ...base, identity: '' }), /identity/);
  });
});
