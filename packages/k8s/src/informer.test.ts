import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ZtwimError } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { KubeApiError } from './api-errors.ts';
import { Backoff } from './backoff.ts';
import { Informer, type ListWatcher } from './informer.ts';
import type { KubeList, KubeObject, WatchEvent } from './objects.ts';
import type { ListOptions, WatchOptions } from './resource-client.ts';
import { RESOURCES } from './resource-ref.ts';

/** Randomness that always gives the same bytes (0 → the shortest jitter, 255 → the longest). */
const fixedRandom =
  (b: number) =>
  (n: number): Uint8Array =>
    new Uint8Array(n).fill(b);

function pod(name: string, rv: string, node = 'n1'): KubeObject {
  return { metadata: { name, namespace: 'ns', resourceVersion: rv }, spec: { nodeName: node } };
}

type Step = WatchEvent | { error: Error } | 'end';

/** An apiserver in memory: lists what `objects` holds, watches replay scripted steps. */
class FakeApi implements ListWatcher {
  readonly description = 'fake';
  objects: KubeObject[] = [];
  rv = '10';
  listCalls: ListOptions[] = [];
  watchCalls: WatchOptions[] = [];
  listFailures: Error[] = [];
  #steps: Step[] = [];
  #wake: (() => void) | undefined;

  push(...steps: Step[]): void {
    this.#steps.push(...steps);
    this.#wake?.();
  }

  async *listPages<T extends KubeObject>(_ref: unknown, options: ListOptions = {}): AsyncGenerator<KubeList<T>> {
    this.listCalls.push(options);
    const f = this.listFailures.shift();
    if (f !== undefined) throw f;
    const limit = options.limit ?? 500;
    for (let i = 0; i < Math.max(1, this.objects.length); i += limit) {
      const items = this.objects.slice(i, i + limit) as T[];
      yield { metadata: { resourceVersion: this.rv, ...(i + limit < this.objects.length ? { continue: String(i + limit) } : {}) }, items };
    }
  }

  async *watch<T extends KubeObject>(_ref: unknown, options: WatchOptions = {}): AsyncGenerator<WatchEvent<T>> {
    this.watchCalls.push(options);
    for (;;) {
      if (options.signal?.aborted === true) return;
      const s = this.#steps.shift();
      if (s === undefined) {
        await new Promise<void>((r) => {
          this.#wake = r;
          options.signal?.addEventListener('abort', () => r(), { once: true });
        });
        this.#wake = undefined;
        continue;
      }
      if (s === 'end') return;
      if ('error' in s) throw s.error;
      yield s as WatchEvent<T>;
    }
  }
}

const gone = (): KubeApiError => new KubeApiError('ERR_GONE', 'too old resource version', 410, 'Expired');
const away = (): ZtwimError => new ZtwimError('ERR_UNAVAILABLE', 'connect ECONNREFUSED');

/** Lets pending promise callbacks run (the informer's loop between awaits). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

describe('Backoff', () => {
  it('doubles from the initial delay up to the cap, jittered within [base/2, base), and resets', () => {
    const low = new Backoff({ initialMs: 1000, maxMs: 8000, random: fixedRandom(0) });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(() => low.next()),
      [500, 1000, 2000, 4000, 4000, 4000],
    );
    low.reset();
    assert.equal(low.next(), 500);
    const high = new Backoff({ initialMs: 1000, maxMs: 8000, random: fixedRandom(255) });
    const d = [1, 2, 3, 4, 5].map(() => high.next());
    assert.deepEqual(
      d.map((x) => (x >= 999 && x < 1000 ? 'max1' : x)),
      ['max1', d[1], d[2], d[3], d[4]],
    );
    assert.ok(d[4]! < 8000 && d[4]! > 7990, `capped at 8000: ${d[4]}`);
  });
});

describe('Informer (fake apiserver, FakeClock)', () => {
  it('lists in pages, then watches from the list resourceVersion with bookmarks; events update store and indexes', async () => {
    const api = new FakeApi();
    api.objects = [pod('a', '5'), pod('b', '6'), pod('c', '7', 'n2')];
    const clock = new FakeClock();
    const inf = new Informer({
      client: api,
      resource: RESOURCES.pods,
      pageSize: 2,
      clock,
      random: fixedRandom(0),
      indexers: { node: (o) => [String((o['spec'] as { nodeName: string }).nodeName)] },
    });
    const seen: string[] = [];
    inf.addHandlers({
      onAdd: (o, i) => seen.push(`add ${o.metadata.name}${i ? '*' : ''}`),
      onUpdate: (_a, b) => seen.push(`update ${b.metadata.name}`),
      onDelete: (o) => seen.push(`delete ${o.metadata.name}`),
    });
    const stop = new AbortController();
    const done = inf.run(stop.signal);
    await inf.waitForSync();
    assert.equal(api.listCalls[0]?.limit, 2);
    assert.deepEqual(seen, ['add a*', 'add b*', 'add c*']);
    assert.deepEqual(
      inf.store
        .byIndex('node', 'n1')
        .map((o) => o.metadata.name)
        .sort(),
      ['a', 'b'],
    );
    await settle();
    assert.equal(api.watchCalls[0]?.resourceVersion, '10');
    assert.equal(api.watchCalls[0]?.allowWatchBookmarks, true);
    api.push(
      { type: 'MODIFIED', object: pod('a', '11', 'n2') },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } },
      { type: 'DELETED', object: pod('b', '13') },
      { type: 'ADDED', object: pod('d', '14') },
    );
    await settle();
    assert.deepEqual(seen.slice(3), ['update a', 'delete b', 'add d']);
    assert.deepEqual(
      inf.store
        .byIndex('node', 'n2')
        .map((o) => o.metadata.name)
        .sort(),
      ['a', 'c'],
    );
    assert.deepEqual(
      inf.store.byIndex('node', 'n1').map((o) => o.metadata.name),
      ['d'],
    );
    assert.equal(inf.resourceVersion, '14');
    stop.abort();
    await done;
  });

  it('on 410 Gone lists again at once and delivers the difference (updates, deletes) without a backoff', async () => {
    const api = new FakeApi();
    api.objects = [pod('a', '5'), pod('b', '6')];
    const clock = new FakeClock();
    const inf = new Informer({ client: api, resource: RESOURCES.pods, clock, random: fixedRandom(0) });
    const seen: string[] = [];
    inf.addHandlers({
      onAdd: (o) => seen.push(`add ${o.metadata.name}`),
      onUpdate: (_a, b) => seen.push(`update ${b.metadata.name}`),
      onDelete: (o) => seen.push(`delete ${o.metadata.name}`),
    });
    const stop = new AbortController();
    const done = inf.run(stop.signal);
    await inf.waitForSync();
    api.objects = [pod('a', '20'), pod('c', '21')];
    api.rv = '22';
    api.push({ error: gone() });
    await settle();
    assert.equal(api.listCalls.length, 2);
    assert.deepEqual(seen, ['add a', 'add b', 'update a', 'add c', 'delete b']);
    assert.equal(inf.stats.relistsOnGone, 1);
    assert.equal(inf.stats.retries, 0);
    assert.equal(api.watchCalls.at(-1)?.resourceVersion, '22');
    stop.abort();
    await done;
  });

  it('reconnects with capped exponential backoff while the apiserver is away, resuming the watch where it stopped', async () => {
    const api = new FakeApi();
    api.objects = [pod('a', '5')];
    const clock = new FakeClock();
    const inf = new Informer({ client: api, resource: RESOURCES.pods, clock, random: fixedRandom(0), backoffInitialMs: 1000, backoffMaxMs: 4000 });
    const stop = new AbortController();
    const done = inf.run(stop.signal);
    await inf.waitForSync();
    api.push({ type: 'MODIFIED', object: pod('a', '15') }, { error: away() }, { error: away() }, { error: away() }, { error: away() });
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      await settle();
      await clock.waitForTimers(1);
      const before = api.watchCalls.length;
      // The retry is not made before its delay is over.
      const t0 = clock.nowMs();
      let step = 0;
      while (api.watchCalls.length === before) {
        clock.advance(50);
        step += 50;
        await settle();
        assert.ok(step <= 10_000, 'no retry within 10 s');
      }
      waits.push(clock.nowMs() - t0);
    }
    // Jitter fixed to its low end: base/2 of 1000, 2000, 4000, 4000 (capped).
    assert.deepEqual(waits, [500, 1000, 2000, 2000]);
    assert.equal(inf.stats.retries, 4);
    assert.equal(api.listCalls.length, 1, 'no relist: the watch resumes from its resourceVersion');
    assert.ok(api.watchCalls.slice(1).every((w) => w.resourceVersion === '15'));
    stop.abort();
    await done;
  });

  it('a failed list is retried after a backoff; hasSynced only once it succeeds', async () => {
    const api = new FakeApi();
    api.objects = [pod('a', '5')];
    api.listFailures = [away()];
    const clock = new FakeClock();
    const inf = new Informer({ client: api, resource: RESOURCES.pods, clock, random: fixedRandom(0), backoffInitialMs: 1000 });
    const stop = new AbortController();
    const done = inf.run(stop.signal);
    await settle();
    await clock.waitForTimers(1);
    assert.equal(inf.hasSynced(), false);
    clock.advance(499);
    await settle();
    assert.equal(api.listCalls.length, 1);
    clock.advance(1);
    await inf.waitForSync();
    assert.equal(api.listCalls.length, 2);
    stop.abort();
    await done;
  });

  it('a watch that ends at once with nothing is retried after a backoff (no tight loop)', async () => {
    const api = new FakeApi();
    const clock = new FakeClock();
    const inf = new Informer({ client: api, resource: RESOURCES.pods, clock, random: fixedRandom(0), backoffInitialMs: 1000 });
    const stop = new AbortController();
    const done = inf.run(stop.signal);
    await inf.waitForSync();
    api.push('end', 'end');
    await settle();
    assert.equal(api.watchCalls.length, 1);
    clock.advance(500);
    await settle();
    assert.equal(api.watchCalls.length, 2);
    stop.abort();
    await done;
  });

  it('resyncs: re-delivers every stored object as an update on the period, without listing', async () => {
    const api = new FakeApi();
    api.objects = [pod('a', '5'), pod('b', '6')];
    const clock = new FakeClock();
    const inf = new Informer({ client: api, resource: RESOURCES.pods, clock, random: fixedRandom(0), resyncMs: 60_000 });
    const updates: string[] = [];
    inf.addHandlers({ onUpdate: (a, b) => updates.push(`${a.metadata.name}:${a === b}`) });
    const stop = new AbortController();
    const done = inf.run(stop.signal);
    await inf.waitForSync();
    await settle();
    clock.advance(59_999);
    assert.deepEqual(updates, []);
    clock.advance(1);
    assert.deepEqual(updates.sort(), ['a:true', 'b:true']);
    clock.advance(60_000);
    assert.equal(updates.length, 4);
    assert.equal(api.listCalls.length, 1);
    assert.equal(inf.stats.resyncs, 2);
    stop.abort();
    await done;
    clock.advance(60_000);
    assert.equal(updates.length, 4, 'no resync after stop');
  });

  it('transform: what is stored and delivered is the transformed object (e.g. without managedFields)', async () => {
    const api = new FakeApi();
    api.objects = [{ metadata: { name: 'a', namespace: 'ns', resourceVersion: '5', managedFields: [{ manager: 'm' }] } }];
    const inf = new Informer({
      client: api,
      resource: RESOURCES.pods,
      clock: new FakeClock(),
      random: fixedRandom(0),
      transform: (o) => ({ ...o, metadata: { ...o.metadata, managedFields: [] } }),
    });
    const delivered: unknown[] = [];
    inf.addHandlers({ onAdd: (o) => delivered.push(o.metadata.managedFields), onUpdate: (_a, b) => delivered.push(b.metadata.managedFields) });
    const stop = new AbortController();
    const done = inf.run(stop.signal);
    await inf.waitForSync();
    await settle();
    api.push({ type: 'MODIFIED', object: { metadata: { name: 'a', namespace: 'ns', resourceVersion: '6', managedFields: [{ manager: 'n' }] } } });
    await settle();
    assert.deepEqual(delivered, [[], []]);
    assert.deepEqual(inf.store.getByName('ns', 'a')?.metadata.managedFields, []);
    stop.abort();
    await done;
  });

  it('a handler that throws does not stop the others or the informer; late handlers get the store as adds', async () => {
    const api = new FakeApi();
    api.objects = [pod('a', '5')];
    const inf = new Informer({ client: api, resource: RESOURCES.pods, clock: new FakeClock(), random: fixedRandom(0) });
    const seen: string[] = [];
    inf.addHandlers({
      onAdd: () => {
        throw new Error('boom');
      },
    });
    inf.addHandlers({ onAdd: (o) => seen.push(o.metadata.name!) });
    const stop = new AbortController();
    const done = inf.run(stop.signal);
    await inf.waitForSync();
    const late: string[] = [];
    inf.addHandlers({ onAdd: (o, initial) => late.push(`${o.metadata.name}:${initial}`) });
    assert.deepEqual(seen, ['a']);
    assert.deepEqual(late, ['a:false']);
    await assert.rejects(inf.run(stop.signal), /already running/);
    stop.abort();
    await done;
  });
});
