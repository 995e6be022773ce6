import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { FakeClock } from '@ztwim/testkit';
import { IDLE_SHARE, RELEASE_GROWTH_MIB, watchMemoryBudget, type OverBudget } from './memory-budget.ts';

const MiB = 1024 * 1024;

function harness(budgetMiB: number, rssAfterGc: (before: number) => number, heapAfterGc: (before: number) => number = (h) => h) {
  const clock = new FakeClock();
  let rss = 50 * MiB;
  let heap = 10 * MiB;
  let busy = 0;
  const gcs: number[] = [];
  const over: OverBudget[] = [];
  const lean: boolean[] = [];
  const watch = watchMemoryBudget(budgetMiB, {
    clock,
    rssBytes: () => rss,
    heapBytes: () => heap,
    fullGc: () => {
      gcs.push(rss);
      rss = rssAfterGc(rss);
      heap = heapAfterGc(heap);
    },
    onOverBudget: (o) => over.push(o),
    busyShare: () => busy,
    setLeanHeap: (on) => lean.push(on),
  });
  return {
    clock,
    gcs,
    over,
    lean,
    stop: watch.stop,
    release: watch.release,
    setRss: (m: number) => {
      rss = m * MiB;
    },
    setHeap: (m: number) => {
      heap = m * MiB;
    },
    setBusy: (share: number) => {
      busy = share;
    },
  };
}

test('watchMemoryBudget: no GC while under budget, one full GC when the resident set goes over', () => {
  const h = harness(96, () => 60 * MiB);
  h.clock.advance(10_000);
  assert.equal(h.gcs.length, 0);
  h.setRss(120);
  h.clock.advance(2_000);
  assert.deepEqual(h.gcs, [120 * MiB]);
  assert.equal(h.over.length, 0, 'back under budget after the GC: nothing to report');
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 1, 'under budget again: no further GC');
  h.stop();
});

test('watchMemoryBudget: still over after the GC: reported, and the checks back off', () => {
  const h = harness(96, (before) => before);
  h.setRss(300);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 1);
  assert.deepEqual(h.over[0], { rssMiB: 300, budgetMiB: 96, nextCheckMs: 4_000 });
  h.clock.advance(3_999);
  assert.equal(h.gcs.length, 1, 'next check only after 4 s');
  h.clock.advance(1);
  assert.equal(h.gcs.length, 2);
  assert.equal(h.over[1]?.nextCheckMs, 8_000);
  for (let i = 0; i < 20; i++) h.clock.advance(300_000);
  assert.ok(
    h.over.every((o) => o.nextCheckMs <= 300_000),
    'backs off to at most 5 min',
  );
  h.setRss(50);
  h.clock.advance(300_000);
  const n = h.gcs.length;
  h.setRss(200);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, n + 1, 'back to 2 s checks once under budget');
  h.stop();
  h.clock.advance(60_000);
  assert.equal(h.gcs.length, n + 1, 'stopped');
});

test('watchMemoryBudget: while the event loop is busy (a burst), no full GC and no lean heap; both once it is idle', () => {
  const h = harness(96, () => 60 * MiB);
  assert.deepEqual(h.lean, [true], 'lean heap from the start');
  h.setRss(200);
  h.setBusy(0.9);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 0, 'no GC during the burst: its memory is in use');
  assert.deepEqual(h.lean, [true, false], 'lean heap off while busy');
  h.clock.advance(10_000);
  assert.equal(h.gcs.length, 0);
  assert.deepEqual(h.lean, [true, false], 'told once, not every check');
  h.setBusy(0.1);
  h.clock.advance(2_000);
  assert.deepEqual(h.gcs, [200 * MiB], 'the GC runs at the first idle check');
  assert.deepEqual(h.lean, [true, false, true]);
  h.stop();
});

test('watchMemoryBudget: a burst during a backed-off wait brings the checks back to 2 s', () => {
  const h = harness(96, (before) => before);
  h.setRss(300);
  h.clock.advance(2_000);
  h.clock.advance(4_000);
  assert.equal(h.gcs.length, 2);
  h.setBusy(0.9);
  h.clock.advance(8_000);
  assert.equal(h.gcs.length, 2, 'busy at the backed-off check: no GC');
  h.setBusy(0);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 3, 'checked again 2 s later, once idle');
  h.stop();
});

test('watchMemoryBudget: under budget, one full GC once V8 heap grew RELEASE_GROWTH_MIB above where it settled', () => {
  const h = harness(
    96,
    (before) => before - 12 * MiB,
    () => 12 * MiB,
  );
  h.setRss(50 + 2 * RELEASE_GROWTH_MIB);
  h.setHeap(10 + RELEASE_GROWTH_MIB);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 0, 'heap up by exactly the threshold, resident set by twice it (code, buffers that stay): no GC');
  h.setRss(90);
  h.setHeap(29);
  h.setBusy(IDLE_SHARE);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 0, 'the loop still partly busy (a burst under way): not yet');
  h.setBusy(IDLE_SHARE / 2);
  h.clock.advance(2_000);
  assert.deepEqual(h.gcs, [90 * MiB], 'a burst left the heap 19 MiB larger: GC at the first idle check');
  h.clock.advance(20_000);
  assert.equal(h.gcs.length, 1, 'settled at 12 MiB: no GC for what it holds for good');
  h.setHeap(12 + RELEASE_GROWTH_MIB + 1);
  h.setBusy(0.9);
  h.clock.advance(4_000);
  assert.equal(h.gcs.length, 1, 'not while busy');
  h.setBusy(0);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 2, 'grown again from where the last GC left it: GC once idle');
  h.setHeap(8);
  h.clock.advance(2_000);
  h.setHeap(8 + RELEASE_GROWTH_MIB + 1);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 3, 'a smaller heap seen since is the reference');
  h.setRss(30);
  h.clock.advance(2_000);
  h.setRss(30 + 2 * RELEASE_GROWTH_MIB + 1);
  h.clock.advance(2_000);
  assert.equal(h.gcs.length, 4, 'the resident set grown by twice the threshold (C heap, buffers), the heap not: GC too');
  h.stop();
});

test('watchMemoryBudget: release() runs the full GC at once if the heap grew, and the heap after it is the reference', () => {
  const h = harness(
    96,
    (before) => before,
    () => 20 * MiB,
  );
  h.setHeap(10 + RELEASE_GROWTH_MIB);
  h.setBusy(0.9);
  h.release();
  assert.equal(h.gcs.length, 0, 'a small first sync: no GC (it would cost memory)');
  h.setHeap(30);
  h.release();
  assert.deepEqual(h.gcs, [50 * MiB], 'a large one: GC at once, busy or not');
  h.setHeap(20 + RELEASE_GROWTH_MIB);
  h.clock.advance(10_000);
  assert.equal(h.gcs.length, 1, 'measured from the 20 MiB the release left');
  h.stop();
  h.release();
  assert.equal(h.gcs.length, 1, 'nothing once stopped');
});

// A daemon's global Headers is the light class, and undici is never loaded by the gRPC layer.
const PROBE = `
import { tuneForDaemon } from ${JSON.stringify(new URL('./daemon-tuning.ts', import.meta.url).href)};
tuneForDaemon();
const h = new Headers({ 'Content-Type': 'application/grpc' });
h.append('x-a', '1'); h.append('x-a', '2');
const copy = new Headers(h);
console.log(JSON.stringify({ undici: process.moduleLoadList.some((m) => m.includes('undici')), ct: copy.get('content-type'), a: copy.get('x-a'), inst: copy instanceof Headers }));
`;

test('tuneForDaemon: the global Headers works without loading undici', () => {
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', PROBE], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim()), { undici: false, ct: 'application/grpc', a: '1, 2', inst: true });
});
