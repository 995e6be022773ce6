/**
 * `@ztwim/spiffe/internal`: the SDK's DER/X.509/JWK readers, shared with the other ztwim
 * packages (server, agent, CLI) so that the tree has one certificate parser, as go-spiffe's
 * `internal/x509util` is shared within its module. Internal: not part of the SDK's public API,
 * no compatibility promise; applications use the root export.
 */
export * from './der.ts';
export * from './x509.ts';
export { publicJwkFromKey, orderJwkMembers } from './jwk.ts';
