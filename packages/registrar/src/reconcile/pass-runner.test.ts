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

  describe('pod passes', () => {
    function podRunner(clock: FakeClock, needFull = false, maxPodPass?: number) {
      const log: string[] = [];
      const r = new PassRunner<string>({
        clock,
        gcIntervalMs: 10_000,
        ...(maxPodPass === undefined ? {} : { maxPodPass }),
        pass: async () => {
          log.push('full');
        },
        podPass: async (pods) => {
          log.push(`pods ${pods.sort().join(',')}`);
          return needFull;
        },
      });
      return { r, log };
    }

    it('pod events run as incremental passes over the dirty pods, coalesced while one runs', async () => {
      const clock = new FakeClock();
      const { r, log } = podRunner(clock);
      r.start();
      await r.idle();
      // The first event starts a pod pass at once; the others (a pod twice) wait for one more.
      for (const p of ['a', 'b', 'c', 'b', 'a']) r.triggerPod(p, p);
      await r.idle();
      assert.deepEqual(log, ['full', 'pods a', 'pods a,b,c']);
      assert.equal(r.podPasses, 2);
      await r.stop();
    });

    it('a full pass instead when one is asked for, the last is gcInterval old, or too many pods are dirty', async () => {
      const clock = new FakeClock();
      const { r, log } = podRunner(clock, false, 2);
      r.start();
      await r.idle();
      r.triggerPod('a', 'a');
      r.trigger();
      r.triggerPod('b', 'b');
      await r.idle();
      assert.deepEqual(log.splice(0), ['full', 'pods a', 'full'], 'the full pass covers pod b, dirty when it started');
      clock.advance(9_000);
      r.triggerPod('b', 'b');
      await r.idle();
      assert.deepEqual(log.splice(0), ['pods b']);
      // A stream of pod events: the safety-net full pass still comes every gcInterval.
      clock.advance(1_000);
      r.triggerPod('c', 'c');
      await r.idle();
      assert.deepEqual(log.splice(0), ['full']);
      for (const p of ['w', 'x', 'y', 'z']) r.triggerPod(p, p);
      await r.idle();
      assert.deepEqual(log.splice(0), ['pods w', 'full'], 'x, y, z: more dirty pods than maxPodPass');
      await r.stop();
    });

    it('a pod pass that needs a full one (or throws) gets it', async () => {
      const clock = new FakeClock();
      const { r, log } = podRunner(clock, true);
      r.start();
      await r.idle();
      r.triggerPod('a', 'a');
      await r.idle();
      assert.deepEqual(log, ['full', 'pods a', 'full']);
      await r.stop();
      let calls = 0;
      const t = new PassRunner<string>({
        clock,
        gcIntervalMs: 10_000,
        pass: async () => {
          calls++;
        },
        podPass: async () => {
          throw new Error('boom');
        },
      });
      t.start();
      await t.idle();
      t.triggerPod('a', 'a');
      await t.idle();
      assert.equal(calls, 2);
      await t.stop();
    });
  });
});
