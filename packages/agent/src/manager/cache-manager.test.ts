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
