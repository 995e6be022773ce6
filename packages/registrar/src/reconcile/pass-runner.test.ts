import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { PassRunner } from './pass-runner.ts';

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('PassRunner', () => {
  it('coalesces a burst of triggers during a pass into one more pass', async () => {
    const clock = new FakeClock();
    let calls = 0;
    let g = gate();
    const r = new PassRunner({
      clock,
      gcIntervalMs: 10_000,
      pass: async () => {
        calls++;
        await g.promise;
      },
    });
    r.start();
    for (let i = 0; i < 1000; i++) r.trigger();
    const first = g;
    g = gate();
    first.open();
    g.open();
    await r.idle();
    assert.equal(calls, 2);
    await r.stop();
  });

  it('runs one pass at a time', async () => {
    const clock = new FakeClock();
    let inFlight = 0;
    let maxInFlight = 0;
    const r = new PassRunner({
      clock,
      gcIntervalMs: 10_000,
      pass: async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((res) => setImmediate(res));
        inFlight--;
      },
    });
    r.start();
    for (let i = 0; i < 5; i++) {
      r.trigger();
      await new Promise((res) => setImmediate(res));
    }
    await r.idle();
    assert.equal(maxInFlight, 1);
    await r.stop();
  });

  it('runs a pass every gcInterval when idle, and not before', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const r = new PassRunner({
      clock,
      gcIntervalMs: 10_000,
      pass: async () => {
        calls++;
      },
    });
    r.start();
    await r.idle();
    assert.equal(calls, 1);
    clock.advance(9_999);
    await r.idle();
    assert.equal(calls, 1);
    clock.advance(1);
    await r.idle();
    assert.equal(calls, 2);
    // a triggered pass restarts the idle countdown
    clock.advance(5_000);
    r.trigger();
    await r.idle();
    assert.equal(calls, 3);
    clock.advance(9_999);
    await r.idle();
    assert.equal(calls, 3);
    await r.stop();
    clock.advance(60_000);
    await r.idle();
    assert.equal(calls, 4 - 1);
  });

  it('keeps running after a pass throws', async () => {
    const clock = new FakeClock();
    const errors: unknown[] = [];
    let calls = 0;
    const r = new PassRunner({
      clock,
      gcIntervalMs: 10,
      pass: async () => {
        calls++;
        if (calls === 1) throw new Error('boom');
      },
      onError: (e) => errors.push(e),
    });
    r.start();
    await r.idle();
    r.trigger();
    await r.idle();
    assert.equal(calls, 2);
    assert.equal(errors.length, 1);
    await r.stop();
  });
});
