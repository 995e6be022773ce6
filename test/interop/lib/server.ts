// The CA surface the interop tests use, in one place, from the public entry point `@ztwim/server`.
export { createCaCertificate, X509Ca, JwtSigner } from '@ztwim/server';
export type { KeyPair, UpstreamAuthority, X509SvidResult, JwtSvidResult } from '@ztwim/server';
