// Internal: runs a client watch for a source, resolving `ready` after the first update.
import { SpiffeError } from '../errors.ts';
import type { Watcher, WorkloadApiError } from './client.ts';

export interface WatchHandle {
  readonly ready: Promise<void>;
  readonly done: Promise<void>;
}

/**
 * Starts `run(watcher, signal)`; `ready` resolves on the first update and rejects if the watch
 * ends first (InvalidArgument/Canceled from the server, or `signal` aborted).
 */
export function startWatch<T>(
  run: (w: Watcher<T>, signal: AbortSignal) => Promise<void>,
  onUpdate: (u: T) => void,
  signal: AbortSignal,
  onError?: (e: WorkloadApiError) => void,
): WatchHandle {
  let resolveReady!: () => void;
  let rejectReady!: (e: unknown) => void;
  let isReady = false;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => {});
  const done = run(
    {
      onUpdate(u) {
        onUpdate(u);
        if (!isReady) {
          isReady = true;
          resolveReady();
        }
      },
      onError(e) {
        onError?.(e);
      },
    },
    signal,
  ).then(
    () => {
      if (!isReady) rejectReady(new SpiffeError('ERR_WORKLOAD_API', 'workloadapi: source closed before the first update'));
    },
    (e: unknown) => {
      if (!isReady) rejectReady(e);
    },
  );
  return { ready, done };
}
