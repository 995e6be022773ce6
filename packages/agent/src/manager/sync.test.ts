import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { EntrySchema } from '@ztwim/proto';
import { silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { CacheManager, entryMatches, rotationTime } from './sync.ts';
import type { ServerClient } from '../client/server-client.ts';
import { singleServer } from '../client/server-pool.ts';

const entry = (sels: string[]) =>
  create(EntrySchema, {
    id: 'e',
    selectors: sels.map((s) => {
      const i = s.indexOf(':');
      return { type: s.slice(0, i), value: s.slice(i + 1) };
    }),
  });
const wl = (sels: string[]) =>
  sels.map((s) => {
    const i = s.indexOf(':');
    return { type: s.slice(0, i), value: s.slice(i + 1) };
  });

const cases = [
  { name: 'subset matches', e: ['unix:uid:1000'], w: ['unix:uid:1000', 'unix:gid:1000'], want: true },
  { name: 'all selectors required', e: ['unix:uid:1000', 'unix:gid:5'], w: ['unix:uid:1000'], want: false },
  { name: 'different value', e: ['unix:uid:1'], w: ['unix:uid:1000'], want: false },
  { name: 'entry without selectors never matches', e: [], w: ['unix:uid:1000'], want: false },
];
for (const c of cases) test(`entryMatches: ${c.name}`, () => assert.equal(entryMatches(entry(c.e), wl(c.w)), c.want));

test('rotationTime: half-life with up to 10% early jitter', () => {
  assert.equal(rotationTime(0, 1000, 0), 500);
  assert.equal(rotationTime(0, 1000, 1), 450);
  assert.ok(rotationTime(1000, 3000, 0.5) < 2000 && rotationTime(1000, 3000, 0.5) >= 1900);
});

test('backoff: doubles on failure, capped at min(8 min, 48 x interval), resets on success', async () => {
  let fail = true;
  const fake = {
    entry: {
      syncAuthorizedEntries: () => {
        if (fail) throw new Error('down');
        return (async function* () {
          yield { entries: [], entryRevisions: [], more: false };
        })();
      },
    },
    bundle: { getBundle: async () => create((await import('@ztwim/proto')).BundleSchema, { trustDomain: 'example.org' }) },
    svid: {},
  } as unknown as ServerClient;
  const m = new CacheManager({ clock: new FakeClock(), logger: silentLogger(), syncIntervalMs: 1000, server: singleServer(() => fake) });
  assert.equal(m.nextDelayMs(), 1000);
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    assert.equal(await m.sync(), false);
    delays.push(m.nextDelayMs());
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 48000, 48000]);
  fail = false;
  assert.equal(await m.sync(), true);
  assert.equal(m.nextDelayMs(), 1000);
});

function fakeSyncClient(entries: ReturnType<typeof entry>[], jwtCalls: string[][] = []): ServerClient {
  return {
    entry: {
      syncAuthorizedEntries: () =>
        (async function* () {
          yield { entries, entryRevisions: [], more: false };
        })(),
    },
    bundle: { getBundle: async () => create((await import('@ztwim/proto')).BundleSchema, { trustDomain: 'example.org' }) },
    svid: {
      batchNewX509SVID: async ({ params }: { params: unknown[] }) => ({ results: params.map(() => ({ status: { code: 13, message: 'not in this test' } })) }),
      newJWTSVID: async ({ audience }: { audience: string[] }) => {
        jwtCalls.push(audience);
        return { svid: { token: `token-${audience.join(',')}-${jwtCalls.length}`, issuedAt: 1000n, expiresAt: 1300n } };
      },
    },
  } as unknown as ServerClient;
}

test('identitiesFor: the selector index returns exactly the entries entryMatches accepts, sorted by id', async () => {
  const specs: [string, string[]][] = [
    ['e5', ['unix:uid:0']],
    ['e1', ['unix:gid:0', 'unix:uid:0']], // indexed under its first selector, which is the workload's second
    ['e3', ['unix:uid:0', 'unix:gid:5']], // needs a selector the workload lacks
    ['e2', ['unix:user:root']],
    ['e4', []], // no selectors: never matches
    ['e6', ['unix:uid:1', 'unix:uid:0']],
    ['e0', ['unix:uid:0', 'unix:gid:0', 'unix:user:root']],
  ];
  const entries = specs.map(([id, sels]) => ({ ...entry(sels), id }));
  const m = new CacheManager({ clock: new FakeClock(), logger: silentLogger(), syncIntervalMs: 1000, server: singleServer(() => fakeSyncClient(entries)) });
  assert.equal(await m.sync(), true);
  for (const w of [['unix:uid:0', 'unix:gid:0'], ['unix:uid:0', 'unix:gid:0', 'unix:user:root'], ['unix:uid:1'], []]) {
    const want = entries
      .filter((e) => entryMatches(e, wl(w)))
      .map((e) => e.id)
      .sort();
    assert.deepEqual(
      m.identitiesFor(wl(w)).map((i) => i.entry.id),
      want,
      `workload ${w.join(' ')}`,
    );
  }
  assert.deepEqual(
    m.identitiesFor(wl(['unix:uid:0', 'unix:gid:0'])).map((i) => i.entry.id),
    ['e1', 'e5'],
  );
});

test('jwtSvid: cached per audience set, at most 1,000 kept, least recently used dropped first', async () => {
  const calls: string[][] = [];
  const e = { ...entry(['unix:uid:0']), id: 'e' };
  const clock = new FakeClock(1_000_000);
  const m = new CacheManager({ clock, logger: silentLogger(), syncIntervalMs: 1000, server: singleServer(() => fakeSyncClient([e], calls)) });
  const first = await m.jwtSvid(e, ['a0']);
  assert.equal(await m.jwtSvid(e, ['a0']), first);
  assert.equal(calls.length, 1);
  for (let i = 1; i < 1000; i++) await m.jwtSvid(e, [`a${i}`]); // cache now full: a0 … a999
  await m.jwtSvid(e, ['a0']); // a0 becomes the most recently used
  assert.equal(calls.length, 1000);
  await m.jwtSvid(e, ['a1000']); // evicts a1, the least recently used
  await m.jwtSvid(e, ['a0']);
  await m.jwtSvid(e, ['a2']);
  assert.equal(calls.length, 1001, 'a0 and a2 still cached');
  await m.jwtSvid(e, ['a1']);
  assert.equal(calls.length, 1002, 'a1 was evicted');
  assert.deepEqual(calls.at(-1), ['a1']);
});

test('jwtSvid: concurrent misses for one token share one server call; a failed call is not cached', async () => {
  const calls: string[][] = [];
  const e = { ...entry(['unix:uid:0']), id: 'e' };
  const m = new CacheManager({
    clock: new FakeClock(1_000_000),
    logger: silentLogger(),
    syncIntervalMs: 1000,
    server: singleServer(() => fakeSyncClient([e], calls)),
  });
  const tokens = await Promise.all(Array.from({ length: 50 }, () => m.jwtSvid(e, ['burst'])));
  assert.equal(calls.length, 1, 'one NewJWTSVID for 50 workloads asking at once');
  assert.equal(new Set(tokens).size, 1);
  await Promise.all([m.jwtSvid(e, ['x']), m.jwtSvid(e, ['y']), m.jwtSvid(e, ['x', 'x'])]);
  assert.equal(calls.length, 3, 'one call per distinct audience set');
  let fail = true;
  const failing = new CacheManager({
    clock: new FakeClock(1_000_000),
    logger: silentLogger(),
    syncIntervalMs: 1000,
    server: singleServer(
      () =>
        ({
          ...fakeSyncClient([e], calls),
          svid: {
            newJWTSVID: async () => {
              if (fail) throw new Error('down');
              return { svid: { token: 't', issuedAt: 1000n, expiresAt: 1300n } };
            },
          },
        }) as unknown as ServerClient,
    ),
  });
  const both = await Promise.allSettled([failing.jwtSvid(e, ['a']), failing.jwtSvid(e, ['a'])]);
  assert.deepEqual(
    both.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  fail = false;
  assert.equal(await failing.jwtSvid(e, ['a']), 't', 'the next call tries again');
});

// ---- The first sync since start (what the Workload API may answer meanwhile) ----

/** A DER shaped like a certificate up to its validity (all the agent reads of a minted leaf). */
function fakeLeaf(notBeforeMs: number): Uint8Array {
  const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag, body.length]), body]);
  const utc = (ms: number): Buffer => tlv(0x17, Buffer.from(new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z', 'latin1'));
  const validity = tlv(0x30, Buffer.concat([utc(notBeforeMs), utc(notBeforeMs + 3600_000)]));
  const tbs = tlv(0x30, Buffer.concat([tlv(0x02, Buffer.from([1])), tlv(0x30, Buffer.alloc(0)), tlv(0x30, Buffer.alloc(0)), validity]));
  return new Uint8Array(tlv(0x30, tbs));
}

interface MintServer {
  client: ServerClient;
  calls: string[][];
  release(call: number): void;
  releaseAll(): void;
  down: boolean;
}

/** A server with these entries whose BatchNewX509SVID answers only when released (gated) or at once. */
function mintServer(entries: ReturnType<typeof entry>[], clock: FakeClock, gated: boolean): MintServer {
  const gates = new Map<number, () => void>();
  let open = !gated;
  const s: MintServer = {
    calls: [],
    down: false,
    release: (call) => {
      gates.get(call)?.();
      gates.delete(call);
    },
    releaseAll: () => {
      open = true;
      for (const g of gates.values()) g();
      gates.clear();
    },
    client: {
      entry: {
        syncAuthorizedEntries: () => {
          if (s.down) throw new Error('server down');
          return (async function* () {
            yield { entries, entryRevisions: [], more: false };
          })();
        },
      },
      bundle: { getBundle: async () => create((await import('@ztwim/proto')).BundleSchema, { trustDomain: 'example.org' }) },
      svid: {
        batchNewX509SVID: async ({ params }: { params: { entryId: string }[] }) => {
          const call = s.calls.push(params.map((p) => p.entryId)) - 1;
          if (!open) await new Promise<void>((r) => gates.set(call, r));
          return {
            results: params.map(() => ({ svid: { certChain: [fakeLeaf(clock.nowMs())], expiresAt: BigInt(Math.floor(clock.nowMs() / 1000) + 3600) } })),
          };
        },
      },
    } as unknown as ServerClient,
  };
  return s;
}

/** Yields to the event loop (and the thread pool making keys) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), 'condition never reached');
}

function settled<T>(p: Promise<T>): { done: boolean; value: T | undefined } {
  const s: { done: boolean; value: T | undefined } = { done: false, value: undefined };
  void p.then((v) => {
    s.done = true;
    s.value = v;
  });
  return s;
}

test('first sync: syncing until the entries are known, then ready; waiters wake as soon as the sync lands', async () => {
  const clock = new FakeClock();
  const mine = { ...entry(['unix:uid:0']), id: 'e1' };
  const srv = mintServer([mine], clock, false);
  const m = new CacheManager({ clock, logger: silentLogger(), syncIntervalMs: 5000, server: singleServer(() => srv.client) });
  for (const need of ['entries', 'svids'] as const) {
    assert.equal(m.readiness(wl(['unix:uid:0']), need), 'syncing');
    assert.equal(m.readiness(wl(['unix:uid:7']), need), 'syncing', 'no entry yet is not "no identity" yet');
  }
  const registered = settled(m.waitReady(wl(['unix:uid:0']), 'svids', 10_000));
  const unregistered = settled(m.waitReady(wl(['unix:uid:7']), 'svids', 10_000));
  await new Promise((r) => setImmediate(r));
  assert.equal(registered.done, false);
  assert.equal(m.synced, false);
  assert.equal(await m.sync(), true);
  await until(() => registered.done && unregistered.done);
  assert.equal(registered.value, true);
  assert.equal(unregistered.value, true, 'after the first sync a workload without entries is answered (PermissionDenied)');
  assert.equal(m.synced, true);
  assert.equal(m.identitiesFor(wl(['unix:uid:0']))[0]?.svid?.entryId, 'e1');
  assert.deepEqual(m.identitiesFor(wl(['unix:uid:7'])), []);
  assert.equal(clock.pending(), 0, "the waiters' timers are cancelled");
});

test('first sync: a waiter gives up after maxWaitMs of the injected clock, or when its call is cancelled; a failed sync stays "syncing"', async () => {
  const clock = new FakeClock();
  const srv = mintServer([{ ...entry(['unix:uid:0']), id: 'e1' }], clock, false);
  srv.down = true;
  const m = new CacheManager({ clock, logger: silentLogger(), syncIntervalMs: 5000, server: singleServer(() => srv.client) });
  assert.equal(await m.sync(), false);
  assert.equal(m.readiness(wl(['unix:uid:0']), 'entries'), 'syncing');
  const w = settled(m.waitReady(wl(['unix:uid:0']), 'svids', 10_000));
  const ac = new AbortController();
  const cancelled = settled(m.waitReady(wl(['unix:uid:0']), 'entries', 10_000, ac.signal));
  clock.advance(9_999);
  await new Promise((r) => setImmediate(r));
  assert.equal(w.done, false);
  ac.abort();
  await until(() => cancelled.done);
  assert.equal(cancelled.value, false);
  clock.advance(1);
  await until(() => w.done);
  assert.equal(w.value, false);
  srv.down = false;
  assert.equal(await m.sync(), true);
  assert.equal(m.readiness(wl(['unix:uid:0']), 'svids'), 'ready');
});

test("first sync: SVIDs are minted in pipelined batches of 500; a waiting workload's entries go out at once in a batch of their own", async () => {
  const clock = new FakeClock();
  const entries = Array.from({ length: 2000 }, (_, i) => ({ ...entry([`unix:uid:${i}`]), id: `e${String(i).padStart(4, '0')}` }));
  const srv = mintServer(entries, clock, true);
  const m = new CacheManager({ clock, logger: silentLogger(), syncIntervalMs: 5000, server: singleServer(() => srv.client) });
  const sync = m.sync();
  await until(() => srv.calls.length === 2);
  assert.equal(m.entriesKnown, true);
  assert.deepEqual(
    srv.calls.map((c) => c.length),
    [500, 500],
    'two batches in flight at once',
  );
  const last = wl(['unix:uid:1999']);
  assert.equal(m.readiness(last, 'entries'), 'ready', 'JWT-SVIDs need only the entries');
  assert.equal(m.readiness(last, 'svids'), 'syncing');
  const served = settled(m.waitReady(last, 'svids', 10_000));
  await until(() => srv.calls.length === 3);
  assert.deepEqual(srv.calls[2], ['e1999'], 'sent while the two batches are still in flight');
  srv.release(2);
  await until(() => served.done);
  assert.equal(served.value, true);
  assert.equal(m.synced, false, 'served while the other batches are still being minted');
  assert.equal(m.readiness(last, 'svids'), 'ready');
  assert.equal(m.readiness(wl(['unix:uid:1998']), 'svids'), 'syncing'); // and goes out at once too
  srv.releaseAll();
  assert.equal(await sync, true);
  assert.equal(m.synced, true);
  assert.deepEqual(
    srv.calls.map((c) => c.length),
    [500, 500, 1, 1, 500, 498],
  );
  assert.equal(new Set(srv.calls.flat()).size, 2000, 'each entry minted once');
  assert.ok(entries.every((e) => m.identitiesFor(wl([`unix:uid:${Number(e.id.slice(1))}`]))[0]?.svid !== undefined));
});

test('first sync: a workload that asked before the entries were known is minted first', async () => {
  const clock = new FakeClock();
  const entries = Array.from({ length: 1200 }, (_, i) => ({ ...entry([`unix:uid:${i}`]), id: `e${String(i).padStart(4, '0')}` }));
  const srv = mintServer(entries, clock, true);
  const m = new CacheManager({ clock, logger: silentLogger(), syncIntervalMs: 5000, server: singleServer(() => srv.client) });
  const served = settled(m.waitReady(wl(['unix:uid:1100']), 'svids', 10_000));
  const sync = m.sync();
  await until(() => srv.calls.length === 3);
  assert.deepEqual(srv.calls[0], ['e1100']);
  srv.release(0);
  await until(() => served.done);
  assert.equal(served.value, true);
  srv.releaseAll();
  assert.equal(await sync, true);
});

test('sync(signal): the agent stopping ends minting after the batches in flight', async () => {
  const clock = new FakeClock();
  const entries = Array.from({ length: 2000 }, (_, i) => ({ ...entry([`unix:uid:${i}`]), id: `e${String(i).padStart(4, '0')}` }));
  const srv = mintServer(entries, clock, true);
  const m = new CacheManager({ clock, logger: silentLogger(), syncIntervalMs: 5000, server: singleServer(() => srv.client) });
  const stop = new AbortController();
  const sync = m.sync(stop.signal);
  await until(() => srv.calls.length === 2);
  stop.abort();
  srv.releaseAll();
  assert.equal(await sync, false);
  assert.equal(srv.calls.length, 2, 'no batch started after the stop');
  assert.equal(m.synced, false);
  assert.equal(m.nextDelayMs(), 5000, 'a stop is not a failure to back off from');
});

test('a PermissionDenied naming the agent banned stops the sync; any other is retried at the next sync', async () => {
  const { ZtwimError } = await import('@ztwim/core');
  let error: Error = new ZtwimError(
    'ERR_PERMISSION_DENIED',
    'PermissionDenied: authorization denied for method /spire.api.server.entry.v1.Entry/SyncAuthorizedEntries',
  );
  const fake = {
    entry: {
      syncAuthorizedEntries: () => {
        throw error;
      },
    },
    bundle: { getBundle: async () => create((await import('@ztwim/proto')).BundleSchema, { trustDomain: 'example.org' }) },
    svid: {},
  } as unknown as ServerClient;
  const m = new CacheManager({ clock: new FakeClock(), logger: silentLogger(), syncIntervalMs: 1000, server: singleServer(() => fake) });
  // an SVID the server no longer takes (rotated since): a failed sync, retried
  assert.equal(await m.sync(), false);
  assert.equal(await m.sync(), false);
  assert.equal(m.nextDelayMs(), 2000, 'counted as failures, with the usual backoff');
  error = new ZtwimError('ERR_PERMISSION_DENIED', 'agent is banned', { fields: { agent_state: 'banned' } });
  await assert.rejects(m.sync(), /agent is banned/);
});
