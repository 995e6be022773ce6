// Polling a condition a child process brings about (a server coming up, an agent syncing).

/** Calls `fn` every 200 ms until it returns a value (which is returned) or `ms` pass (throws naming `what`). */
export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
