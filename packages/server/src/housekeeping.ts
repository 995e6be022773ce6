import { every, unixSeconds, type Clock, type Logger, type Metrics, type Task } from '@ztwim/core';
import type { DataStore } from './datastore/datastore.ts';

export const HOUSEKEEPING_INTERVAL_MS = 60_000;

/** Every minute: prune expired join tokens and entries, and refresh the entry and agent gauges. */
export function housekeeping(deps: { dataStore: DataStore; clock: Clock; metrics: Metrics; log: Logger }): Task {
  const { dataStore: ds, clock, metrics, log } = deps;
  return every(
    clock,
    HOUSEKEEPING_INTERVAL_MS,
    async () => {
      const now = unixSeconds(clock.now());
      const [, , entries, agents] = await Promise.all([ds.pruneJoinTokens(now), ds.pruneExpiredEntries(now), ds.countEntries(), ds.countAttestedNodes()]);
      metrics.entries.set(entries);
      metrics.agents.set(agents);
    },
    { immediate: false, onError: (e) => log.warn({ error: (e as Error).message }, 'Housekeeping failed') },
  );
}

export const ENTRY_INDEX_REFRESH_MS = 5_000;

/**
 * Applies entry changes to the datastore's authorised-entry index every 5 s (SPIRE's
 * cache_reload_interval), so an agent sync after a bulk import does not replay them itself; then
 * `onRefreshed` lets watching agents check whether their entries changed (also by other servers'
 * writes). A datastore without an index has nothing to refresh.
 */
export function entryIndexRefresh(deps: { dataStore: DataStore; clock: Clock; log: Logger; onRefreshed: () => void }): Task {
  const { dataStore: ds, clock, log } = deps;
  if (ds.warmUp === undefined) return async () => undefined;
  return every(
    clock,
    ENTRY_INDEX_REFRESH_MS,
    async () => {
      await ds.warmUp?.();
      deps.onRefreshed();
    },
    { immediate: false, onError: (e) => log.warn({ error: (e as Error).message }, 'Entry index refresh failed') },
  );
}
