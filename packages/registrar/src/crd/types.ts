/**
 * `spire.spiffe.io/v1alpha1` custom resources as spire-controller-manager v0.6.x defines them
 * (api/v1alpha1/*_types.go): the JSON shapes the API server stores (spec + status), and the
 * parsed, validated forms the reconciler works with.
 */
import type { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import type { LabelSelector } from '../labels.ts';
import type { Template } from '../template/template.ts';

export const SPIRE_GROUP = 'spire.spiffe.io';
export const SPIRE_API_VERSION = 'spire.spiffe.io/v1alpha1';

/** The parts of metav1.ObjectMeta the registrar reads (cluster-scoped objects: no namespace). */
export interface CrdObjectMeta {
  readonly name?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly creationTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

// ---- ClusterSPIFFEID ----

export interface ClusterSPIFFEIDSpec {
  /** Go text/template rendering the SPIFFE ID (required). */
  readonly spiffeIDTemplate: string;
  /** Upper bound for X509-SVID TTLs, a Go duration ("1h"); unset or "0s" is the server default. */
  readonly ttl?: string;
  /** Upper bound for JWT-SVID TTLs, a Go duration. */
  readonly jwtTtl?: string;
  readonly dnsNameTemplates?: readonly string[];
  /** Templates rendering extra `type:value` workload selectors. */
  readonly workloadSelectorTemplates?: readonly string[];
  readonly federatesWith?: readonly string[];
  readonly namespaceSelector?: LabelSelector;
  readonly podSelector?: LabelSelector;
  readonly admin?: boolean;
  readonly downstream?: boolean;
  readonly autoPopulateDNSNames?: boolean;
  readonly className?: string;
  /** Applies only to pods no non-fallback ClusterSPIFFEID matched. */
  readonly fallback?: boolean;
  readonly hint?: string;
}

export interface ClusterSPIFFEIDStats {
  readonly namespacesSelected: number;
  readonly namespacesIgnored: number;
  readonly podsSelected: number;
  readonly podEntryRenderFailures: number;
  readonly entriesMasked: number;
  readonly entriesToSet: number;
  readonly entryFailures: number;
}

export interface ClusterSPIFFEIDStatus {
  readonly stats?: ClusterSPIFFEIDStats;
}

export interface ClusterSPIFFEID {
  readonly apiVersion: typeof SPIRE_API_VERSION;
  readonly kind: 'ClusterSPIFFEID';
  readonly metadata: CrdObjectMeta;
  readonly spec: ClusterSPIFFEIDSpec;
  readonly status?: ClusterSPIFFEIDStatus;
}

// ---- ClusterStaticEntry ----

export interface ClusterStaticEntrySpec {
  readonly spiffeID: string;
  readonly parentID: string;
  /** `type:value` selectors. */
  readonly selectors: readonly string[];
  readonly federatesWith?: readonly string[];
  readonly x509SVIDTTL?: string;
  readonly jwtSVIDTTL?: string;
  readonly dnsNames?: readonly string[];
  readonly hint?: string;
  readonly admin?: boolean;
  readonly downstream?: boolean;
  readonly storeSVID?: boolean;
  readonly className?: string;
}

export interface ClusterStaticEntryStatus {
  /** The entry rendered (its IDs and selectors parsed). */
  readonly rendered: boolean;
  /** Another entry with the same ID, parent and selectors won. */
  readonly masked: boolean;
  /** The entry was created or updated on the server. */
  readonly set: boolean;
}

export interface ClusterStaticEntry {
  readonly apiVersion: typeof SPIRE_API_VERSION;
  readonly kind: 'ClusterStaticEntry';
  readonly metadata: CrdObjectMeta;
  readonly spec: ClusterStaticEntrySpec;
  readonly status?: ClusterStaticEntryStatus;
}

// ---- ClusterFederatedTrustDomain ----

export type BundleEndpointProfileType = 'https_web' | 'https_spiffe';

export interface BundleEndpointProfile {
  readonly type: BundleEndpointProfileType;
  /** Required for https_spiffe, refused for https_web. */
  readonly endpointSPIFFEID?: string;
}

export interface ClusterFederatedTrustDomainSpec {
  readonly trustDomain: string;
  /** https URL without userinfo. */
  readonly bundleEndpointURL: string;
  readonly bundleEndpointProfile: BundleEndpointProfile;
  /** The trust domain's SPIFFE bundle (JWKS JSON), optional. */
  readonly trustDomainBundle?: string;
  readonly className?: string;
}

export interface ClusterFederatedTrustDomain {
  readonly apiVersion: typeof SPIRE_API_VERSION;
  readonly kind: 'ClusterFederatedTrustDomain';
  readonly metadata: CrdObjectMeta;
  readonly spec: ClusterFederatedTrustDomainSpec;
  /** Empty in v0.6.x. */
  readonly status?: Readonly<Record<string, never>>;
}

// ---- parsed forms ----

/** Identity and ordering of a parsed object: masking is oldest first, then by UID. */
export interface ParsedMeta {
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  /** RFC 3339 text as the API server wrote it ('' when absent). */
  readonly creationTimestamp: string;
}

export interface ParsedClusterSPIFFEIDSpec {
  readonly spiffeIDTemplate: Template;
  /** undefined: every namespace. */
  readonly namespaceSelector: LabelSelector | undefined;
  /** undefined: every pod. */
  readonly podSelector: LabelSelector | undefined;
  /** Whole seconds; 0 is the server default. */
  readonly ttlSeconds: number;
  readonly jwtTtlSeconds: number;
  readonly federatesWith: readonly TrustDomain[];
  readonly dnsNameTemplates: readonly Template[];
  readonly workloadSelectorTemplates: readonly Template[];
  readonly admin: boolean;
  readonly downstream: boolean;
  readonly autoPopulateDNSNames: boolean;
  readonly className: string;
  readonly fallback: boolean;
  readonly hint: string;
}

export interface ParsedClusterSPIFFEID {
  readonly meta: ParsedMeta;
  readonly spec: ParsedClusterSPIFFEIDSpec;
}

export interface ParsedSelector {
  readonly type: string;
  readonly value: string;
}

export interface ParsedClusterStaticEntrySpec {
  readonly spiffeId: SpiffeId;
  readonly parentId: SpiffeId;
  readonly selectors: readonly ParsedSelector[];
  readonly federatesWith: readonly TrustDomain[];
  readonly x509SvidTtlSeconds: number;
  readonly jwtSvidTtlSeconds: number;
  readonly dnsNames: readonly string[];
  readonly hint: string;
  readonly admin: boolean;
  readonly downstream: boolean;
  readonly storeSvid: boolean;
  readonly className: string;
}

export interface ParsedClusterStaticEntry {
  readonly meta: ParsedMeta;
  readonly spec: ParsedClusterStaticEntrySpec;
}

export type ParsedBundleEndpointProfile = { readonly type: 'https_web' } | { readonly type: 'https_spiffe'; readonly endpointSpiffeId: SpiffeId };

export interface ParsedClusterFederatedTrustDomainSpec {
  readonly trustDomain: TrustDomain;
  readonly bundleEndpointUrl: string;
  readonly bundleEndpointProfile: ParsedBundleEndpointProfile;
  /** The bundle's JSON as given, checked to parse as a SPIFFE bundle of the trust domain. */
  readonly trustDomainBundle: string | undefined;
  readonly className: string;
}

export interface ParsedClusterFederatedTrustDomain {
  readonly meta: ParsedMeta;
  readonly spec: ParsedClusterFederatedTrustDomainSpec;
}
