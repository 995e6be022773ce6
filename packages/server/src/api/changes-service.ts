// ztwim.server.v1.Changes (ztwim's own, not SPIRE's): a revision of what the admin API lists, for
// watchers such as the web console. An interceptor counts every call that succeeded and can
// change an entry, an agent, a bundle or a federation relationship; GetRevision reads the count.
import type { Interceptor, ServiceImpl } from '@connectrpc/connect';
import type { ChangesService } from '@ztwim/proto';

/** The admin-facing services whose writes the revision follows. */
const WATCHED = new Set([
  'spire.api.server.entry.v1.Entry',
  'spire.api.server.agent.v1.Agent',
  'spire.api.server.bundle.v1.Bundle',
  'spire.api.server.trustdomain.v1.TrustDomain',
]);
/** Methods of those services that only read (everything else writes). */
const READS = /^(Get|List|Count|Sync)/;

/** Writes committed through this server's API since it started. */
export class AdminWrites {
  #count = 0n;

  bump(): void {
    this.#count += 1n;
  }

  get count(): bigint {
    return this.#count;
  }
}

/** True for the methods whose success moves the revision. */
export function isWatchedWrite(service: string, method: string): boolean {
  return WATCHED.has(service) && !READS.test(method);
}

/** Bumps `writes` after each watched write call that succeeded (a batch with refused items too). */
export function adminWritesInterceptor(writes: AdminWrites): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (isWatchedWrite(req.service.typeName, req.method.name)) writes.bump();
    return res;
  };
}

export function changesService(deps: { readonly writes: AdminWrites; readonly startedAtMs: number }): ServiceImpl<typeof ChangesService> {
  return {
    getRevision() {
      return { writes: deps.writes.count, startedAt: BigInt(deps.startedAtMs) };
    },
  };
}
