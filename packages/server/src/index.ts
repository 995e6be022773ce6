export {};
// datastore
export { SimilarEntryError, MATCH_BEHAVIORS, ENTRY_FIELDS, BUNDLE_DELETE_MODES } from './datastore/datastore.ts';
export type {
  DataStore,
  Entry,
  NewEntry,
  EntryField,
  EntryMask,
  EntryUpdate,
  EntryFilter,
  Selector,
  SelectorMatch,
  FederatesWithMatch,
  MatchBehavior,
  Page,
  ListEntriesResult,
  BatchCreateResult,
  AttestedNode,
  NewAttestedNode,
  AttestedNodeUpdate,
  AttestedNodeFilter,
  ListAttestedNodesResult,
  JoinToken,
  Bundle,
  BundleInput,
  BundleDeleteMode,
  FederationRelationship,
  NewFederationRelationship,
  BundleEndpointProfile,
  X509Authority,
  JwtAuthority,
} from './datastore/datastore.ts';
export { SqliteDataStore, DEFAULT_SQLITE_PATH } from './datastore/sqlite/sqlite-datastore.ts';
export type { SqliteDataStoreOptions } from './datastore/sqlite/sqlite-datastore.ts';
export { PostgresDataStore } from './datastore/postgres/postgres-datastore.ts';
export type { PostgresDataStoreOptions } from './datastore/postgres/postgres-datastore.ts';
export { SCHEMA_VERSION } from './datastore/sql/schema.ts';
// configuration, composition root
export { buildServerConfig, loadServerConfig, SERVER_DEFAULTS } from './config/server-config.ts';
export type {
  ServerConfig,
  ServerConfigOverrides,
  ExtraBlocksReader,
  DataStoreConfig,
  KeyManagerConfig,
  NodeAttestorsConfig,
  X509PopConfig,
} from './config/server-config.ts';
export { startServer, openDataStore } from './server.ts';
export type { RunningServer, ServerDeps } from './server.ts';
// node attestation
export { X509PopAttestor } from './attestation/x509pop.ts';
export { JoinTokenAttestor, joinTokenAgentId, nodeAliasEntry } from './attestation/join-token.ts';
export type { NodeAttestor, NodeAttestationResult, ChallengeFn } from './attestation/node-attestor.ts';
// key management
export { KEY_TYPES, isKeyType } from './keymanager/key-manager.ts';
export type { KeyType, KeyManager, ManagedKey } from './keymanager/key-manager.ts';
export { MemoryKeyManager } from './keymanager/memory.ts';
export { DiskKeyManager } from './keymanager/disk.ts';
export type { DiskKeyManagerConfig } from './keymanager/disk.ts';
// CA: CSRs, X.509 CA, JWT signing, rotation
export { parseCsr } from './ca/csr.ts';
export type { ParsedCsr } from './ca/csr.ts';
export { createCaCertificate, X509Ca, DEFAULT_CA_SUBJECT, NOT_BEFORE_CUSHION_MS } from './ca/x509-ca.ts';
export type { X509CaConfig, CreateCaCertificateOptions, SignX509SvidParams, X509SvidResult, UpstreamAuthority, KeyPair } from './ca/x509-ca.ts';
export type { CaSubject } from './ca/cert-builder.ts';
export { JwtSigner, jwtAlgFor, publicJwk } from './ca/jwt-signer.ts';
export type { JwtAlg, JwtSignerConfig, PublishedJwtKey, SignJwtSvidParams, JwtSvidResult } from './ca/jwt-signer.ts';
export { resolveCaConfig, CA_DEFAULTS } from './ca/config.ts';
export type { CaConfig, ResolvedCaConfig } from './ca/config.ts';
export { CaManager, prepareAt, activateAt } from './ca/manager.ts';
export type { CaManagerConfig, CaBundle, BundleListener } from './ca/manager.ts';
export { createCaManager } from './ca/wiring.ts';
export type { CaManagerHandle, CreateCaManagerDeps } from './ca/wiring.ts';

export { startBundleEndpoint, BUNDLE_ENDPOINT_LIMITS } from './federation/bundle-endpoint.ts';
export type { BundleEndpoint, BundleEndpointOptions, BundleEndpointLimits, BundleEndpointTls } from './federation/bundle-endpoint.ts';
export { fetchBundle, bootstrapFromEndpoint } from './federation/fetch-bundle.ts';
export type { FetchBundleOptions, EndpointAuth, EndpointBootstrap } from './federation/fetch-bundle.ts';
export { spiffeBundleToInput } from './federation/bundle-json.ts';
export { FederationRefresher, REFRESH_TIMING, nextRefreshMs } from './federation/refresher.ts';
export type { RelationshipConfig } from './federation/refresher.ts';
export type { FederationConfig, BundleEndpointConfig } from './federation/config.ts';
export { bundleData, K8sBundleNotifier } from './notifier/k8s-bundle.ts';
export type { ConfigMapClient } from './notifier/k8s-bundle.ts';
export { K8S_BUNDLE_DEFAULTS } from './notifier/k8s-bundle-config.ts';
export type { K8sBundleNotifierConfig } from './notifier/k8s-bundle-config.ts';
