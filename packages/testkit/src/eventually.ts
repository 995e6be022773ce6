// Waiting in tests for something another party brings about (a socket peer, a child process, a
// watch callback): poll a check until it holds, with a deadline that names what was awaited.
// Time that the code under test measures itself belongs to FakeClock, not here.

export interface EventuallyOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** Pause between checks (default 10 ms). */
  readonly intervalMs?: number;
}

/**
 * Calls `check` until it returns something other than `undefined` or `false`, and returns that.
 * An error thrown by `check` ends the wait at once (a peer that died is not worth waiting for).
 * After `timeoutMs` it throws an Error naming `what`.
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: EventuallyOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 10 } = options;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
