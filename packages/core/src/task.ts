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
