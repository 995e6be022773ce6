export { startOidcProvider } from './provider.ts';
export type { OidcProvider, OidcProviderDeps, OidcProviderUrls } from './provider.ts';
export { validateOidcConfig, parseListenAddress, domainProblem, issuerUrlProblem, LETS_ENCRYPT_DIRECTORY_URL } from './config.ts';
export type {
  OidcConfig,
  ValidatedOidcConfig,
  ServingCertFileConfig,
  AcmeConfig,
  HealthChecksConfig,
  MetricsConfig,
  ListenAddress,
  ListenerConfig,
} from './config.ts';
export { StaticJwksSource, CallbackJwksSource } from './jwks-source.ts';
export type { JwksSource, KeySetSnapshot, Unsubscribe } from './jwks-source.ts';
export { FileJwksSource, jwtAuthoritiesFromBundle, DEFAULT_FILE_POLL_INTERVAL_MS } from './file-jwks-source.ts';
export type { FileJwksSourceOptions } from './file-jwks-source.ts';
export { toPublishedJwk, toPublicKeySet, signingAlgs, algForKey, SUPPORTED_ALGS, PRIVATE_MEMBERS, MAX_PUBLISHED_KEYS } from './jwk.ts';
export type { JsonWebKey, PublishedJwk, PublicKeySet, PublicKeySetOptions, DroppedKey, SupportedAlg } from './jwk.ts';
export { OidcHandler } from './handler.ts';
export type { OidcHandlerOptions, DiscoveryDocument } from './handler.ts';
export { OidcMetrics } from './metrics.ts';
export { loadServingCert } from '@ztwim/acme';
export type { ServingCert } from '@ztwim/acme';
export { checkIssuer, checkPassed, formatFindings, CHECK_TARGETS, TARGET_NAMES, TARGET_ALGS } from './check.ts';
export type { CheckTarget, CheckOptions, CheckFetch, CheckResponse, Finding, Severity } from './check.ts';
export { loadOidcConfigFile, buildOidcFileConfig, unixSocketPathOf, DEFAULT_SOURCE_POLL_INTERVAL_MS, DEFAULT_OIDC_CONFIG_PATH } from './config-file.ts';
export type { OidcFileConfig, KeySourceConfig, LoadOidcConfigOptions, LogFormat } from './config-file.ts';
export { WorkloadApiJwksSource, jwksOfJwtBundle, exponentialBackoff } from './workload-api-jwks-source.ts';
export type { WorkloadApiJwksSourceOptions } from './workload-api-jwks-source.ts';
export { ServerApiJwksSource, jwksOfServerBundle, DEFAULT_SERVER_API_POLL_INTERVAL_MS } from './server-api-jwks-source.ts';
export type { ServerApiJwksSourceOptions } from './server-api-jwks-source.ts';
export { createJwksSource } from './key-source.ts';
