import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { Clock } from '@ztwim/core';
import type { AgentHintsService } from '@ztwim/proto';
import type { DataStore, Entry } from '../datastore/datastore.ts';
import { callerKey } from './caller.ts';

/**
 * Tells waiters that registration entries may have changed. The entry API notifies after each
 * write it commits; the background index refresh notifies too, which covers writes made by other
 * servers sharing the database (seen within its 5 s period).
 */
export class EntryChanges {
  #next = EntryChanges.#pending();

  static #pending(): { promise: Promise<void>; resolve: () => void } {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    return { promise, resolve };
  }

  notify(): void {
    const current = this.#next;
    this.#next = EntryChanges.#pending();
    current.resolve();
  }

  /** Resolves at the next notify(); rejects when the signal aborts. */
  next(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      void this.#next.promise.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
}

export interface HintsServiceDeps {
  readonly dataStore: DataStore;
  readonly nodeSelectors: (agentId: string) => Promise<Array<{ type: string; value: string }>>;
  readonly changes: EntryChanges;
  /** Changes within this window after the first one are reported as one hint (default 100 ms). */
  readonly debounceMs?: number;
  /** Times the debounce window. */
  readonly clock: Clock;
}

/** What an agent would sync: the id and revision of each authorised entry. */
function fingerprint(entries: readonly Entry[]): string {
  let s = '';
  for (const e of entries) s += `${e.id}:${e.revisionNumber};`;
  return s;
}

/** ztwim.agent.v1.AgentHints: a hint to the calling agent whenever its authorised entries change. */
export function hintsService(deps: HintsServiceDeps): ServiceImpl<typeof AgentHintsService> {
  const debounceMs = deps.debounceMs ?? 100;
  return {
    async *watch(_req, ctx: HandlerContext) {
      const agentId = ctx.values.get(callerKey).agentId?.toString();
      if (agentId === undefined) throw new ConnectError('caller is not an agent', Code.PermissionDenied);
      const authorized = async (): Promise<readonly Entry[]> => deps.dataStore.listAuthorizedEntries(agentId, await deps.nodeSelectors(agentId));
      let last = await authorized();
      let lastPrint = fingerprint(last);
      for (;;) {
        try {
          await deps.changes.next(ctx.signal);
          await deps.clock.sleep(debounceMs, ctx.signal);
        } catch {
          return; // the call ended (client gone, deadline, server shutting down)
        }
        const now = await authorized();
        // The store hands out the same array while nothing changed at all.
        if (now === last) continue;
        last = now;
        const print = fingerprint(now);
        if (print === lastPrint) continue; // other agents' entries changed, not this one's
        lastPrint = print;
        yield { entries: now.length };
      }
    },
  };
}
