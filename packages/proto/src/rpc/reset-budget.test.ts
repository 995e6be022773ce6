// The stream-reset bucket against nghttp2's arithmetic (burst 1,000, 33 tokens/s), on an injected
// clock: when it reports "low", and how it refills.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResetBudget, NGHTTP2_RESET_BURST, NGHTTP2_RESET_RATE, DEFAULT_RESET_LOW_WATER } from './reset-budget.ts';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 5_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** Resets until the bucket reports low; returns how many it took (or `max` + 1 if it never did). */
function resetsUntilLow(b: ResetBudget, max: number, between?: () => void): number {
  for (let i = 1; i <= max; i++) {
    if (b.reset()) return i;
    between?.();
  }
  return max + 1;
}

test('defaults are nghttp2 1.57+ values and a 100-token margin', () => {
  assert.equal(NGHTTP2_RESET_BURST, 1000);
  assert.equal(NGHTTP2_RESET_RATE, 33);
  assert.equal(DEFAULT_RESET_LOW_WATER, 100);
});

test('a full bucket: low after burst - lowWater + 1 resets with no time passing, well before nghttp2 empties', () => {
  const c = clock();
  const b = new ResetBudget(c.now);
  assert.equal(b.tokens, 1000);
  // 900 resets leave 100: not yet low; the 901st leaves 99.
  assert.equal(resetsUntilLow(b, 2000), 901);
  assert.equal(b.tokens, 99);
});

const cases = [
  { name: 'at the refill rate (33/s) it never runs low', perSecond: 33, resets: 10_000, low: undefined },
  { name: 'just under the rate (30/s) it never runs low', perSecond: 30, resets: 10_000, low: undefined },
  // 100/s: net loss 67/s, 900 tokens to lose: low after ~13.4 s, i.e. ~1,344 resets.
  { name: 'at 100/s it runs low after ~1,344 resets', perSecond: 100, resets: 10_000, low: 1344 },
  // 1000/s: net loss 967/s: low after ~0.93 s, ~931 resets.
  { name: 'at 1,000/s it runs low after ~931 resets', perSecond: 1000, resets: 10_000, low: 931 },
] as const;

for (const c of cases) {
  test(c.name, () => {
    const k = clock();
    const b = new ResetBudget(k.now);
    const n = resetsUntilLow(b, c.resets, () => k.advance(1000 / c.perSecond));
    if (c.low === undefined) {
      assert.equal(n, c.resets + 1);
      assert.ok(b.tokens > 990, `tokens ${b.tokens}`);
    } else {
      assert.ok(Math.abs(n - c.low) <= 2, `low after ${n} resets, expected ~${c.low}`);
    }
  });
}

test('the refill is capped at the burst and continuous (a fraction of a second counts)', () => {
  const k = clock();
  const b = new ResetBudget(k.now, { burst: 10, ratePerSecond: 2, lowWater: 3 });
  for (let i = 0; i < 6; i++) b.reset();
  assert.equal(b.tokens, 4);
  k.advance(500);
  assert.equal(b.tokens, 5);
  k.advance(60_000);
  assert.equal(b.tokens, 10);
  // The clock going backwards (it must not) adds nothing and takes nothing.
  k.advance(-10_000);
  assert.equal(b.tokens, 10);
});

test('low is reported from the reset that takes the bucket under lowWater, and on every reset after it', () => {
  const k = clock();
  const b = new ResetBudget(k.now, { burst: 5, ratePerSecond: 1, lowWater: 2 });
  assert.deepEqual(
    Array.from({ length: 7 }, () => b.reset()),
    [false, false, false, true, true, true, true],
  );
  assert.equal(b.tokens, 0);
  // Time brings it back above lowWater.
  k.advance(3000);
  assert.equal(b.reset(), false);
});
