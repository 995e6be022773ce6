// Checks the Workload API handlers run before answering from the cache: the request's arguments
// (as SPIRE's handler checks them, before attestation) and the agent's first sync since start.
import { Code, ConnectError } from '@connectrpc/connect';
import { SpiffeId } from '@ztwim/spiffe';
import type { Selector } from '../attestation/workload/workload-attestor.ts';
import type { ReadinessNeed } from '../manager/sync.ts';

/** What the checks need of the agent's cache: whether it can answer for a workload yet. */
export interface ReadinessSource {
  waitReady(selectors: readonly Selector[], need: ReadinessNeed, maxWaitMs: number, signal: AbortSignal): Promise<boolean>;
}

/**
 * How long a call waits for the first sync since the agent started before it is answered
 * Unavailable. Long enough for the first sync of 100,000 entries on a small machine (so a stream
 * opened during it gets its SVIDs as soon as they are minted), short enough that a workload whose
 * agent cannot reach its server is told why within seconds.
 */
export const FIRST_SYNC_WAIT_MS = 10_000;

/** The Unavailable message during the first sync (retryable; never PermissionDenied meanwhile). */
export const SYNCING_MESSAGE = 'agent is syncing with the server: identities not available yet, retry';

/**
 * Resolves once the cache can answer for the workload (see CacheManager.readiness); until then
 * the call waits, at most FIRST_SYNC_WAIT_MS, then fails with Unavailable. Without this a workload
 * asking right after an agent restart was told PermissionDenied "no identity issued" because the
 * cache was still empty.
 */
export async function awaitCache(
  cache: ReadinessSource,
  selectors: readonly Selector[],
  need: ReadinessNeed,
  signal: AbortSignal,
  maxWaitMs = FIRST_SYNC_WAIT_MS,
): Promise<void> {
  if (await cache.waitReady(selectors, need, maxWaitMs, signal)) return;
  throw new ConnectError(SYNCING_MESSAGE, Code.Unavailable);
}

/**
 * FetchJWTSVID arguments, checked before attestation as SPIRE's handler does. An audience list
 * with only empty strings is no audience (SPIRE's server drops empty values, then refuses the
 * empty list; spire-agent passes that refusal on as Unavailable, which clients retry forever):
 * InvalidArgument, the Workload API spec's answer for a missing mandatory field.
 */
export function checkJwtSvidRequest(req: { readonly audience: readonly string[]; readonly spiffeId: string }): void {
  if (!req.audience.some((a) => a !== '')) throw new ConnectError('audience must be specified', Code.InvalidArgument);
  if (req.spiffeId !== '') {
    try {
      SpiffeId.parse(req.spiffeId);
    } catch (e) {
      throw new ConnectError(`invalid requested SPIFFE ID: ${e instanceof Error ? e.message : String(e)}`, Code.InvalidArgument);
    }
  }
}

/** ValidateJWTSVID arguments, checked first as SPIRE's handler does. */
export function checkValidateRequest(req: { readonly audience: string; readonly svid: string }): void {
  if (req.audience === '') throw new ConnectError('audience must be specified', Code.InvalidArgument);
  if (req.svid === '') throw new ConnectError('svid must be specified', Code.InvalidArgument);
}
