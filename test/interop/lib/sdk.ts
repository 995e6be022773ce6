// The SDK surface the interop tests use, in one place. Everything comes from the public
// package entry point `@ztwim/spiffe` (loaded from source via the `ztwim-source` condition).
export { SpiffeId, TrustDomain, X509Bundle, JwtBundle, SpiffeBundle, X509Svid, verifyX509Svid, parseAndValidateJwtSvid, JwtSvid } from '@ztwim/spiffe';
