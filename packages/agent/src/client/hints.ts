// Entry-change hints from a ztwim server (ztwim.agent.v1.AgentHints/Watch): the agent syncs as
// soon as the server says its authorised entries changed, instead of waiting for its next sync.
// A server without the service (spire-server) answers Unimplemented once and the agent keeps to
// polling; any other failure is retried with backoff. Polling continues either way.
import { Code } from '@connectrpc/connect';
import { isZtwimError, type Clock, type Logger } from '@ztwim/core';
import { hasGrpcCode } from './errors.ts';
import { streamCallOptions, type ServerClient } from './server-client.ts';

/** How long one Watch call may stay open before it is renewed (connections behind NATs/LBs). */
export const HINT_STREAM_MS = 10 * 60_000;

export interface HintWatcherOptions {
  /** The connection in use (client/server-pool.ts makes one when there is none). */
  readonly client: () => ServerClient | Promise<ServerClient>;
  /** Told of each failed watch (the pool fails over when the server is gone). */
  readonly onFailure?: (client: ServerClient, e: unknown) => void;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called for every hint (the agent wakes its sync loop). */
  readonly onHint: () => void;
  /** Aborted when the agent stops. */
  readonly signal: AbortSignal;
  /** First retry delay after a failure (doubles up to maxBackoffMs). */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** Runs until the signal aborts or the server turns out not to have the service. Never throws. */
export async function watchHints(o: HintWatcherOptions): Promise<'stopped' | 'unsupported'> {
  const base = o.backoffMs ?? 1000;
  const max = o.maxBackoffMs ?? 60_000;
  let failures = 0;
  while (!o.signal.aborted) {
    const ac = new AbortController();
    const onStop = (): void => ac.abort();
    o.signal.addEventListener('abort', onStop, { once: true });
    let client: ServerClient | undefined;
    try {
      client = await o.client();
      for await (const h of client.hints.watch({}, streamCallOptions(ac, HINT_STREAM_MS))) {
        failures = 0;
        o.log.debug({ entries: h.entries }, 'Entry change hint from the server');
        o.onHint();
      }
      failures = 0; // a stream renewed at its deadline or closed by the server: watch again
    } catch (e) {
      if (o.signal.aborted) break;
      if (isZtwimError(e, 'ERR_UNIMPLEMENTED')) {
        o.log.debug({}, 'Server has no entry-change hints; syncing at the sync interval only');
        return 'unsupported';
      }
      if (!hasGrpcCode(e, Code.DeadlineExceeded)) {
        if (client !== undefined) o.onFailure?.(client, e);
        failures++;
        o.log.debug({ err: e, failures }, 'Entry-change hint stream failed; retrying');
        try {
          await o.clock.sleep(Math.min(max, base * 2 ** Math.min(failures - 1, 10)), o.signal);
        } catch {
          break;
        }
      }
    } finally {
      o.signal.removeEventListener('abort', onStop);
      ac.abort();
    }
  }
  return 'stopped';
}
