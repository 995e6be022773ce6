import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { EntrySchema } from '@ztwim/proto';
import { silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { CacheManager, entryMatches, rotationTime } from './cache-manager.ts';
import type { ServerClient } from '../client/server-client.ts';

const entry = (sels: string[]) => create(EntrySchema, { id: 'e', selectors: sels.map((s) => { const i = s.indexOf(':'); return { type: s.slice(0, i), value: s.slice(i + 1) }; }) });
const wl = (sels: string[]) => sels.map((s) => { const i = s.indexOf(':'); return { type: s.slice(0, i), value: s.slice(i + 1) }; });

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
    entry: { syncAuthorizedEntries: () => { if (fail) throw new Error('down'); return (async function* () { yield { entries: [], entryRevisions: [], more: false }; })(); } },
    bundle: { getBundle: async () => create((await import('@ztwim/proto')).BundleSchema, { trustDomain: 'example.org' }) },
    svid: {},
  } as unknown as ServerClient;
  const m = new CacheManager({ clock: new FakeClock(), logger: silentLogger(), syncIntervalMs: 1000, client: () => fake });
  assert.equal(m.nextDelayMs(), 1000);
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) { assert.equal(await m.sync(), false); delays.push(m.nextDelayMs()); }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 48000, 48000]);
  fail = false;
  assert.equal(await m.sync(), true);
  assert.equal(m.nextDelayMs(), 1000);
});

function fakeSyncClient(entries: ReturnType<typeof entry>[], jwtCalls: string[][] = []): ServerClient {
  return {
    entry: { syncAuthorizedEntries: () => (async function* () { yield { entries, entryRevisions: [], more: false }; })() },
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
  const m = new CacheManager({ clock: new FakeClock(), logger: silentLogger(), syncIntervalMs: 1000, client: () => fakeSyncClient(entries) });
  assert.equal(await m.sync(), true);
  for (const w of [['unix:uid:0', 'unix:gid:0'], ['unix:uid:0', 'unix:gid:0', 'unix:user:root'], ['unix:uid:1'], []]) {
    const want = entries.filter((e) => entryMatches(e, wl(w))).map((e) => e.id).sort();
    assert.deepEqual(m.identitiesFor(wl(w)).map((i) => i.entry.id), want, `workload ${w.join(' ')}`);
  }
  assert.deepEqual(m.identitiesFor(wl(['unix:uid:0', 'unix:gid:0'])).map((i) => i.entry.id), ['e1', 'e5']);
});

test('jwtSvid: cached per audience set, at most 1,000 kept, least recently used dropped first', async () => {
  const calls: string[][] = [];
  const e = { ...entry(['unix:uid:0']), id: 'e' };
  const clock = new FakeClock(1_000_000);
  const m = new CacheManager({ clock, logger: silentLogger(), syncIntervalMs: 1000, client: () => fakeSyncClient([e], calls) });
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
