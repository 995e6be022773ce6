// Tests of @ztwim/core's task runner. They live here because they drive it with the FakeClock,
// and @ztwim/core cannot import @ztwim/testkit (testkit is built on core).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { every, runTasks, Wakeup, type Logger, type Task } from '@ztwim/core';
import { FakeClock } from './fake-clock.ts';

/** Lets pending promise callbacks run (the task loop awaits between runs). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const deferred = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

test('runTasks: the first task to fail aborts the others and its error is the result', async () => {
  const seen: unknown[] = [];
  const waitsForAbort: Task = (signal) =>
    new Promise<void>((resolve) =>
      signal.addEventListener('abort', () => {
        seen.push(signal.reason);
        resolve();
      }),
    );
  const boom = new Error('boom');
  const fails: Task = async () => {
    await settle();
    throw boom;
  };
  await assert.rejects(runTasks([waitsForAbort, fails, waitsForAbort], new AbortController().signal), (e) => e === boom);
  assert.deepEqual(seen, [boom, boom]);
});

test('runTasks: aborting the signal stops every task and resolves; a later failure is not an error', async () => {
  const ctl = new AbortController();
  const stopped: string[] = [];
  const mk =
    (name: string, throwOnStop: boolean): Task =>
    (signal) =>
      new Promise<void>((resolve, reject) =>
        signal.addEventListener('abort', () => {
          stopped.push(name);
          if (throwOnStop) reject(new Error(`${name} stopped`));
          else resolve();
        }),
      );
  const run = runTasks([mk('a', false), mk('b', true)], ctl.signal);
  ctl.abort();
  await run;
  assert.deepEqual(stopped.sort(), ['a', 'b']);
  // An already aborted signal hands the tasks an aborted signal at once.
  let sawAborted = false;
  await runTasks([async (s) => void (sawAborted = s.aborted)], ctl.signal);
  assert.equal(sawAborted, true);
});

test('every: runs at once, then every ms of the clock, until aborted', async () => {
  const clock = new FakeClock();
  const at: number[] = [];
  const ctl = new AbortController();
  const t0 = clock.nowMs();
  const done = every(clock, 1000, () => void at.push(clock.nowMs() - t0))(ctl.signal);
  await clock.waitForTimers(1);
  assert.deepEqual(at, [0]);
  clock.advance(999);
  await settle();
  assert.deepEqual(at, [0]);
  clock.advance(1);
  await clock.waitForTimers(1);
  clock.advance(1000);
  await clock.waitForTimers(1);
  assert.deepEqual(at, [0, 1000, 2000]);
  ctl.abort();
  await done;
  assert.equal(clock.pending(), 0, 'no timer left behind');
});

test('every: immediate false waits ms before the first run', async () => {
  const clock = new FakeClock();
  let runs = 0;
  const ctl = new AbortController();
  const done = every(clock, 500, () => void runs++, { immediate: false })(ctl.signal);
  await clock.waitForTimers(1);
  assert.equal(runs, 0);
  clock.advance(500);
  await clock.waitForTimers(1);
  assert.equal(runs, 1);
  ctl.abort();
  await done;
});

test('every: runs never overlap; the next wait starts when a slow run finishes', async () => {
  const clock = new FakeClock();
  const t0 = clock.nowMs();
  const starts: number[] = [];
  let running = 0;
  let maxRunning = 0;
  const gates: Array<() => void> = [];
  const ctl = new AbortController();
  const done = every(clock, 100, async () => {
    starts.push(clock.nowMs() - t0);
    running++;
    maxRunning = Math.max(maxRunning, running);
    const d = deferred();
    gates.push(d.resolve);
    await d.promise;
    running--;
  })(ctl.signal);
  await settle();
  assert.equal(clock.pending(), 0, 'no timer is armed while a run is in progress');
  clock.advance(1000);
  await settle();
  assert.deepEqual(starts, [0]);
  gates.shift()?.();
  await clock.waitForTimers(1);
  clock.advance(100);
  await settle();
  assert.deepEqual(starts, [0, 1100], 'the next run is ms after the previous one ended');
  assert.equal(maxRunning, 1);
  ctl.abort();
  gates.shift()?.();
  await done;
});

test('every: a failed run goes to onError (or the log) and the loop goes on', async () => {
  const clock = new FakeClock();
  const errors: unknown[] = [];
  let runs = 0;
  const ctl = new AbortController();
  const done = every(
    clock,
    10,
    () => {
      runs++;
      if (runs < 3) throw new Error(`run ${runs}`);
    },
    { onError: (e) => errors.push((e as Error).message) },
  )(ctl.signal);
  for (let i = 0; i < 3; i++) {
    await clock.waitForTimers(1);
    clock.advance(10);
  }
  await clock.waitForTimers(1);
  assert.equal(runs, 4);
  assert.deepEqual(errors, ['run 1', 'run 2']);
  ctl.abort();
  await done;

  const logged: Array<Record<string, unknown>> = [];
  const log = { warn: (o: Record<string, unknown>) => void logged.push(o) } as unknown as Logger;
  const ctl2 = new AbortController();
  const done2 = every(
    clock,
    10,
    () => {
      throw new Error('disk full');
    },
    { name: 'housekeeping', log },
  )(ctl2.signal);
  await clock.waitForTimers(1);
  assert.deepEqual(logged, [{ task: 'housekeeping', error: 'disk full' }]);
  ctl2.abort();
  await done2;
});

test('every: stopOnError rejects the task, so runTasks stops its siblings', async () => {
  const clock = new FakeClock();
  const boom = new Error('fatal');
  let siblingStopped = false;
  const sibling: Task = (signal) => new Promise<void>((r) => signal.addEventListener('abort', () => r(void (siblingStopped = true))));
  await assert.rejects(
    runTasks(
      [
        every(
          clock,
          10,
          () => {
            throw boom;
          },
          { stopOnError: true },
        ),
        sibling,
      ],
      new AbortController().signal,
    ),
    (e) => e === boom,
  );
  assert.equal(siblingStopped, true);
  assert.equal(clock.pending(), 0);
});

test('every: ms as a function is asked before each wait', async () => {
  const clock = new FakeClock();
  const t0 = clock.nowMs();
  const at: number[] = [];
  const waits = [100, 300, 50];
  const ctl = new AbortController();
  const done = every(
    clock,
    () => waits.shift() ?? 1000,
    () => void at.push(clock.nowMs() - t0),
  )(ctl.signal);
  for (const step of [100, 300, 50, 1000]) {
    await clock.waitForTimers(1);
    clock.advance(step - 1);
    await settle();
    clock.advance(1);
  }
  await clock.waitForTimers(1);
  assert.deepEqual(at, [0, 100, 400, 450, 1450]);
  ctl.abort();
  await done;
});

test('every: jitter spreads the wait with the injected randomness', async () => {
  for (const [byte, expected] of [
    [0x00, 800],
    [0x80, 1000],
  ] as const) {
    const clock = new FakeClock();
    const t0 = clock.nowMs();
    const at: number[] = [];
    const ctl = new AbortController();
    const random = (n: number): Uint8Array => new Uint8Array(n).fill(0).map((_, i) => (i === 0 ? byte : 0));
    const done = every(clock, 1000, () => void at.push(clock.nowMs() - t0), { jitter: { fraction: 0.2, random } })(ctl.signal);
    await clock.waitForTimers(1);
    clock.advance(expected - 1);
    await settle();
    assert.deepEqual(at, [0], `byte ${byte}: not before ${expected}`);
    clock.advance(1);
    await clock.waitForTimers(1);
    assert.deepEqual(at, [0, expected], `byte ${byte}`);
    ctl.abort();
    await done;
  }
});

test('every: a wakeup runs fn before the timer; one during a run makes one more run after it', async () => {
  const clock = new FakeClock();
  const wakeup = new Wakeup();
  let runs = 0;
  let gate: (() => void) | undefined;
  const ctl = new AbortController();
  const done = every(
    clock,
    60_000,
    async () => {
      runs++;
      if (runs === 2) {
        const d = deferred();
        gate = d.resolve;
        await d.promise;
      }
    },
    { wakeup },
  )(ctl.signal);
  await clock.waitForTimers(1);
  assert.equal(runs, 1);
  wakeup.fire();
  await settle();
  assert.equal(runs, 2, 'woken before the timer');
  wakeup.fire();
  wakeup.fire();
  gate?.();
  await settle();
  assert.equal(runs, 3, 'the wake-ups during the run coalesce into one run');
  await clock.waitForTimers(1);
  assert.equal(clock.pending(), 1, 'the losing timer of the woken waits was cancelled');
  ctl.abort();
  await done;
  assert.equal(clock.pending(), 0);
});
