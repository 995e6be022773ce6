export { SpiffeError, isSpiffeError, SPIFFE_ERROR_CODES } from './errors.ts';
export type { SpiffeErrorCode, SpiffeErrorOptions } from './errors.ts';
export { SpiffeId, validatePath, MAX_SPIFFE_ID_LENGTH } from './id/spiffe-id.ts';
export { TrustDomain, MAX_TRUST_DOMAIN_LENGTH } from './id/trust-domain.ts';
export { matchAny, matchId, matchOneOf, matchMemberOf, matchPredicate } from './id/matcher.ts';
export type { Matcher } from './id/matcher.ts';
export { pemToDerList, derToPem, splitConcatenatedDer, concatDer } from './internal/pem.ts';
export { certificateValidity } from './internal/x509.ts';
export { X509Bundle } from './bundle/x509-bundle.ts';
export { JwtBundle } from './bundle/jwt-bundle.ts';
export type { JwtBundleParseOptions } from './bundle/jwt-bundle.ts';
export { SpiffeBundle, parseBundleMap } from './bundle/spiffe-bundle.ts';
export type { SpiffeBundleParseOptions, SpiffeBundleParts } from './bundle/spiffe-bundle.ts';
export { X509BundleSet, JwtBundleSet } from './bundle/set.ts';
export type { X509BundleSource, JwtBundleSource } from './bundle/source.ts';
export { X509Svid } from './svid/x509-svid.ts';
export { verifyX509Svid } from './svid/verify.ts';
export { createSvidCsr } from './svid/svid-csr.ts';
export type { SvidCsr } from './svid/svid-csr.ts';
export type { VerifyX509SvidOptions, VerifiedX509Svid } from './svid/verify.ts';
export { JwtSvid, parseAndValidateJwtSvid, parseInsecureJwtSvid, JWT_SVID_ALGORITHMS, DEFAULT_JWT_LEEWAY_SECONDS } from './svid/jwt-svid.ts';
export type { JwtSvidValidateOptions } from './svid/jwt-svid.ts';
export { parseWorkloadEndpoint, defaultWorkloadEndpoint, SPIFFE_ENDPOINT_SOCKET } from './workload/address.ts';
export type { WorkloadEndpoint } from './workload/address.ts';
export {
  WorkloadApiClient,
  WorkloadApiError,
  WORKLOAD_API_HEADER,
  GrpcCode,
  linearBackoff,
  toWorkloadApiError,
  parseX509SvidResponse,
  parseX509ContextResponse,
  parseX509BundlesResponse,
  parseJwtBundlesResponse,
  parseJwtSvidResponse,
} from './workload/client.ts';
export type { Backoff, X509Context, Watcher, JwtSvidParams, WorkloadApiClientOptions } from './workload/client.ts';
export type { GrpcInterceptor, GrpcRequest, GrpcTransportKind } from './workload/grpc-http2.ts';
export { X509Source } from './workload/x509-source.ts';
export type { X509SourceOptions, X509SvidPicker } from './workload/x509-source.ts';
export { JwtSource } from './workload/jwt-source.ts';
export type { JwtSourceOptions } from './workload/jwt-source.ts';
export { BundleSource } from './workload/bundle-source.ts';
export type { BundleSourceOptions } from './workload/bundle-source.ts';
export type { SourceLifecycleOptions } from './workload/source-lifecycle.ts';
export { SpiffeWorkloadAPI } from './workload/proto/workload/workload_pb.ts';
export { authorizeAny, authorizeId, authorizeOneOf, authorizeMemberOf, authorizeIf } from './tls/authorizer.ts';
export type { Authorizer } from './tls/authorizer.ts';
export { tlsServerOptions, tlsClientOptions, enforceMtls, createMtlsServer, connectMtls, authorizePeer, peerChain } from './tls/tls-options.ts';
export type { X509SvidSource, BundleAuthorities, MtlsOptions, MtlsServerOptions } from './tls/tls-options.ts';
