export { SpiffeError, isSpiffeError, SPIFFE_ERROR_CODES } from './errors.ts';
export type { SpiffeErrorCode } from './errors.ts';
export { SpiffeId, validatePath, MAX_SPIFFE_ID_LENGTH } from './id/spiffe-id.ts';
export { TrustDomain, MAX_TRUST_DOMAIN_LENGTH } from './id/trust-domain.ts';
export { matchAny, matchId, matchOneOf, matchMemberOf, matchPredicate } from './id/matcher.ts';
export type { Matcher } from './id/matcher.ts';
