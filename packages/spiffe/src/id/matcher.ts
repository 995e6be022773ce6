import { SpiffeError } from '../errors.ts';
import type { SpiffeId } from './spiffe-id.ts';
import type { TrustDomain } from './trust-domain.ts';

/** Decides whether a peer's SPIFFE ID is acceptable; throws SpiffeError(ERR_AUTHORIZATION) if not. */
export type Matcher = (id: SpiffeId) => void;

export const matchAny = (): Matcher => () => {};

export const matchId =
  (expected: SpiffeId): Matcher =>
  (id) => {
    if (!id.equals(expected)) throw new SpiffeError('ERR_AUTHORIZATION', `spiffeid: unexpected ID "${id.toString()}"`);
  };

export const matchOneOf = (...expected: SpiffeId[]): Matcher => {
  const set = new Set(expected.map((e) => e.toString()));
  return (id) => {
    if (!set.has(id.toString())) throw new SpiffeError('ERR_AUTHORIZATION', `spiffeid: unexpected ID "${id.toString()}"`);
  };
};

export const matchMemberOf =
  (td: TrustDomain): Matcher =>
  (id) => {
    if (!id.memberOf(td)) {
      throw new SpiffeError('ERR_AUTHORIZATION', `spiffeid: unexpected trust domain "${id.trustDomain.name}"`);
    }
  };

export const matchPredicate =
  (pred: (id: SpiffeId) => boolean): Matcher =>
  (id) => {
    if (!pred(id)) throw new SpiffeError('ERR_AUTHORIZATION', `spiffeid: unexpected ID "${id.toString()}"`);
  };
