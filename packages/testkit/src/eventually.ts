// Waiting in tests for something another party brings about (a socket peer, a child process, a
// watch callback): poll a check until it holds, with a deadline that names what was awaited.
// Time that the code under test measures itself belongs to FakeClock, not here.

export interface EventuallyOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** Pause between checks (default 10 ms). */
  readonly intervalMs?: number;
  /**
   * Retry when `check` throws (a server not listening yet refuses the call), instead of ending the
   * wait; the timeout's error then carries the last one.
   */
  readonly retryErrors?: boolean;
}

/**
 * Calls `check` until it returns something other than `undefined` or `false`, and returns that.
 * An error thrown by `check` ends the wait at once (a peer that died is not worth waiting for),
 * unless `retryErrors` is set. After `timeoutMs` it throws an Error naming `what`.
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: EventuallyOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 10, retryErrors = false } = options;
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if (!retryErrors) throw e;
      last = e;
    }
    if (Date.now() > end) {
      const why = last === undefined ? '' : `; last error: ${last instanceof Error ? last.message : String(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`, last === undefined ? undefined : { cause: last });
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface HoldsForOptions {
  /** How long `check` must keep holding (real time). */
  readonly forMs: number;
  /** Pause between checks (default 10 ms). */
  readonly intervalMs?: number;
}

/**
 * The counterpart of eventually() for a test that must see that something does *not* happen (no
 * retry before its backoff, no renewal before it is due): checks `check` for `forMs` of real time
 * and throws naming `what` as soon as it fails. There is no event to await, so the window has a
 * fixed length; the caller says why that length is enough (typically: the code acts on a clock
 * step within a few event-loop turns, so a wrong action would show well inside it).
 */
export async function holdsFor(what: string, check: () => boolean | Promise<boolean>, options: HoldsForOptions): Promise<void> {
  const { forMs, intervalMs = 10 } = options;
  const end = Date.now() + forMs;
  for (;;) {
    if (!(await check())) throw new Error(`${what}: no longer true after ${forMs - Math.max(0, end - Date.now())} of ${forMs} ms`);
    if (Date.now() >= end) return;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, end - Date.now()))));
  }
}
