/**
 * TLS peer authorizers (go-spiffe `tlsconfig.Authorize*`): called with the peer's verified
 * SPIFFE ID and chains; throw SpiffeError ERR_AUTHORIZATION to refuse the peer.
 */
import { SpiffeId } from '../id/spiffe-id.ts';
import type { TrustDomain } from '../id/trust-domain.ts';
import { matchId, matchMemberOf, matchOneOf, matchPredicate } from '../id/matcher.ts';

export type Authorizer = (id: SpiffeId, verifiedChains: readonly Uint8Array[][]) => void;

const toId = (id: SpiffeId | string): SpiffeId => (typeof id === 'string' ? SpiffeId.parse(id) : id);

/** Any SPIFFE ID (the chain is still verified against the bundle). */
export const authorizeAny = (): Authorizer => () => {};

export const authorizeId = (id: SpiffeId | string): Authorizer => {
  const m = matchId(toId(id));
  return (peer) => m(peer);
};

export const authorizeOneOf = (...ids: (SpiffeId | string)[]): Authorizer => {
  const m = matchOneOf(...ids.map(toId));
  return (peer) => m(peer);
};

export const authorizeMemberOf = (td: TrustDomain): Authorizer => {
  const m = matchMemberOf(td);
  return (peer) => m(peer);
};

export const authorizeIf = (predicate: (id: SpiffeId) => boolean): Authorizer => {
  const m = matchPredicate(predicate);
  return (peer) => m(peer);
};
