// Polling a condition a child process brings about (a server coming up, an agent syncing).
import { eventually } from '@ztwim/testkit';

/** Calls `fn` every 200 ms until it returns a value (which is returned) or `ms` pass (throws naming `what`). */
export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  return eventually(what, fn, { timeoutMs: ms, intervalMs: 200 });
}
