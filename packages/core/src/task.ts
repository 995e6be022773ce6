import type { Clock } from './clock.ts';
import type { Logger } from './log.ts';
import type { Random } from './random.ts';

/** A long-running unit of work; the process is a list of them. It stops when the signal aborts. */
export type Task = (signal: AbortSignal) => Promise<void>;

/**
 * Runs tasks together: the first one to fail aborts the others, and the combined promise rejects
 * with that error once all have stopped. Aborting `signal` stops all of them cleanly.
 */
export async function runTasks(tasks: readonly Task[], signal: AbortSignal): Promise<void> {
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort(signal.reason);
  if (signal.aborted) ctl.abort(signal.reason);
  else signal.addEventListener('abort', onAbort, { once: true });
  let firstError: unknown;
  let failed = false;
  await Promise.all(
    tasks.map(async (t) => {
      try {
        await t(ctl.signal);
      } catch (e) {
        if (!failed && !ctl.signal.aborted) {
          failed = true;
          firstError = e;
        }
        ctl.abort(e);
      }
    }),
  );
  signal.removeEventListener('abort', onAbort);
  if (failed) throw firstError;
}

/**
 * Wakes a periodic task before its timer is due (a CA activation, a hint from the server).
 * A wake-up while the task is running makes it run once more right after, never twice at once.
 */
export class Wakeup {
  #pending = false;
  #waiter: (() => void) | undefined;

  fire(): void {
    this.#pending = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** Resolves at the next fire() (at once if one came since the last call); consumes it. */
  next(signal: AbortSignal): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiter = undefined;
        reject(signal.reason);
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiter = () => {
        signal.removeEventListener('abort', onAbort);
        this.#pending = false;
        resolve();
      };
    });
  }
}

export interface EveryOptions {
  /** Names the task in logs. */
  readonly name?: string;
  /** Where failed runs are reported (warn, with the task name) when there is no onError. */
  readonly log?: Logger;
  /** Receives each failed run's error; the loop goes on. */
  readonly onError?: (error: unknown) => void;
  /** Stop the task (reject it, so runTasks stops its siblings) at the first failed run. */
  readonly stopOnError?: boolean;
  /** Run fn when the task starts (default) or only after the first wait. */
  readonly immediate?: boolean;
  /**
   * Spread each wait uniformly over [ms·(1-fraction), ms·(1+fraction)] using the injected
   * randomness, so that many processes started together do not call at the same moment.
   */
  readonly jitter?: { readonly fraction: number; readonly random: Random };
  /** Runs fn before its timer is due each time it is fired. */
  readonly wakeup?: Wakeup;
}

/**
 * A task that calls fn every `ms` milliseconds of `clock` until the signal aborts. Runs never
 * overlap: the next wait starts when the previous run has finished, as SPIRE's periodic loops do.
 * `ms` may be a function, asked before each wait (a rotator waits until its SVID's half-life).
 * A failed run is reported to onError (or logged) and the loop goes on, unless stopOnError.
 */
export function every(clock: Clock, ms: number | (() => number), fn: (signal: AbortSignal) => Promise<void> | void, opts: EveryOptions = {}): Task {
  const delay = typeof ms === 'number' ? (): number => ms : ms;
  const report =
    opts.onError ??
    ((e: unknown): void => {
      opts.log?.warn({ task: opts.name ?? 'periodic', error: e instanceof Error ? e.message : String(e) }, 'Background task failed');
    });
  const wait = async (signal: AbortSignal): Promise<void> => {
    let d = delay();
    const j = opts.jitter;
    if (j !== undefined && j.fraction > 0) d = Math.max(0, d * (1 - j.fraction + 2 * j.fraction * unitInterval(j.random)));
    const wake = opts.wakeup;
    if (wake === undefined) {
      await clock.sleep(d, signal);
      return;
    }
    // Either the timer or a wake-up ends the wait; the loser is cancelled through its own signal.
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const timer = clock.sleep(d, ctl.signal);
      const woken = wake.next(ctl.signal);
      // The loser rejects when ctl aborts below; the race has already settled by then.
      timer.catch(() => undefined);
      woken.catch(() => undefined);
      await Promise.race([timer, woken]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      ctl.abort();
    }
  };
  return async (signal) => {
    let first = opts.immediate !== false;
    while (!signal.aborted) {
      if (!first) {
        try {
          await wait(signal);
        } catch (e) {
          if (signal.aborted) return;
          throw e;
        }
      }
      first = false;
      try {
        await fn(signal);
      } catch (e) {
        if (signal.aborted) return;
        if (opts.stopOnError === true) throw e;
        report(e);
      }
    }
  };
}

/** A uniform number in [0, 1) from 4 random bytes. */
function unitInterval(random: Random): number {
  const b = random(4);
  return ((((b[0] ?? 0) << 24) | ((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0)) >>> 0) / 2 ** 32;
}

/** Resolves when the signal aborts (at once if it has). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * A task that keeps something running (a listener, a timer owned by another object) until the
 * signal aborts, then closes it: the close-by-abort of a composition root's `runTasks` list.
 */
export function closeOnAbort(close: () => Promise<void> | void): Task {
  return async (signal) => {
    await untilAborted(signal);
    await close();
  };
}
