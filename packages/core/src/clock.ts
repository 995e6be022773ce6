/**
 * Time as a dependency. Every component that reads the time or sets a timer takes a Clock,
 * so that tests drive TTL expiry and CA rotation with a FakeClock (see @ztwim/testkit)
 * instead of sleeping.
 */
export type Cancel = () => void;

export interface Clock {
  now(): Date;
  /** Milliseconds since the epoch; same source as now(). */
  nowMs(): number;
  /** Calls fn once after ms; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): Cancel;
  /** Resolves after ms, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  nowMs: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref?.();
    return () => clearTimeout(t);
  },
  sleep(ms, signal) {
    return sleepWith(systemClock, ms, signal);
  },
};

/** sleep() built on a clock's setTimer; shared by the system and fake clocks. */
export function sleepWith(clock: Pick<Clock, 'setTimer'>, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Unix seconds (integer) of a date. */
export function unixSeconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}
