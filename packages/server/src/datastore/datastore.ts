/**
 * The server's only storage (SPIRE `pkg/server/datastore`). Every method is async; implementations
 * are SqliteDataStore (one file) and PostgresDataStore. Times are Unix seconds, SPIFFE IDs are full
 * `spiffe://` strings. get* return null when absent; update/delete of an absent record throw
 * ZtwimError ERR_NOT_FOUND; malformed filters and page tokens throw ERR_INVALID_ARGUMENT;
 * storage failures throw ERR_DATASTORE (or ERR_UNAVAILABLE when the database cannot be reached).
 */
import { ZtwimError } from '@ztwim/core';

export interface Selector {
  readonly type: string;
  readonly value: string;
}

/** SPIRE MatchBehavior (types.SelectorMatch / FederatesWithMatch). */
export type MatchBehavior = 'EXACT' | 'SUBSET' | 'SUPERSET' | 'ANY';
export const MATCH_BEHAVIORS: readonly MatchBehavior[] = ['EXACT', 'SUBSET', 'SUPERSET', 'ANY'];

export interface Entry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: readonly Selector[];
  readonly x509SvidTtl: number;
  readonly jwtSvidTtl: number;
  readonly federatesWith: readonly string[];
  readonly admin: boolean;
  readonly downstream: boolean;
  /** Unix seconds; 0 = never. */
  readonly expiresAt: number;
  readonly dnsNames: readonly string[];
  readonly revisionNumber: number;
  readonly storeSvid: boolean;
  readonly hint: string;
  /** Unix seconds. */
  readonly createdAt: number;
}

/** Input to createEntry: omitted fields take their zero values; id omitted = UUIDv4. */
export interface NewEntry {
  readonly id?: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: readonly Selector[];
  readonly x509SvidTtl?: number;
  readonly jwtSvidTtl?: number;
  readonly federatesWith?: readonly string[];
  readonly admin?: boolean;
  readonly downstream?: boolean;
  readonly expiresAt?: number;
  readonly dnsNames?: readonly string[];
  readonly storeSvid?: boolean;
  readonly hint?: string;
}

/** Updatable entry fields (SPIRE EntryMask without revision_number/created_at, which the store owns). */
export type EntryField =
  | 'spiffeId'
  | 'parentId'
  | 'selectors'
  | 'x509SvidTtl'
  | 'jwtSvidTtl'
  | 'federatesWith'
  | 'admin'
  | 'downstream'
  | 'expiresAt'
  | 'dnsNames'
  | 'storeSvid'
  | 'hint';
export const ENTRY_FIELDS: readonly EntryField[] = [
  'spiffeId',
  'parentId',
  'selectors',
  'x509SvidTtl',
  'jwtSvidTtl',
  'federatesWith',
  'admin',
  'downstream',
  'expiresAt',
  'dnsNames',
  'storeSvid',
  'hint',
];
/** Absent mask = replace every field; present = only the fields set to true. */
export type EntryMask = Partial<Record<EntryField, boolean>>;
export type EntryUpdate = Partial<Pick<Entry, EntryField>> & { readonly id: string };

export interface SelectorMatch {
  readonly selectors: readonly Selector[];
  readonly match: MatchBehavior;
}

export interface FederatesWithMatch {
  /** Trust domain names, `td` or `spiffe://td`. */
  readonly trustDomains: readonly string[];
  readonly match: MatchBehavior;
}

export interface EntryFilter {
  readonly bySpiffeId?: string;
  readonly byParentId?: string;
  readonly bySelectors?: SelectorMatch;
  readonly byFederatesWith?: FederatesWithMatch;
  readonly byHint?: string;
  /** Only true restricts (SPIRE: by_downstream=false means no filter). */
  readonly byDownstream?: boolean;
}

export interface Page {
  /** 0 (or omitted) = everything in one page. */
  readonly pageSize?: number;
  /** Opaque token from a previous page; '' or omitted = first page. */
  readonly pageToken?: string;
}

export interface ListEntriesResult {
  readonly entries: Entry[];
  /** '' when there are no more pages. */
  readonly nextPageToken: string;
}

export type BatchCreateResult = { readonly ok: true; readonly entry: Entry } | { readonly ok: false; readonly error: ZtwimError };

export interface AttestedNode {
  readonly spiffeId: string;
  readonly attestationType: string;
  /** Decimal serial of the current agent SVID; '' = banned. */
  readonly serialNumber: string;
  readonly expiresAt: number;
  readonly newSerialNumber: string;
  /** 0 = none. */
  readonly newExpiresAt: number;
  readonly canReattest: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Node selectors (node_resolver_map_entries). */
  readonly selectors: readonly Selector[];
}

export interface NewAttestedNode {
  readonly spiffeId: string;
  readonly attestationType: string;
  readonly serialNumber: string;
  readonly expiresAt: number;
  readonly newSerialNumber?: string;
  readonly newExpiresAt?: number;
  readonly canReattest?: boolean;
}

export type AttestedNodeUpdate = Partial<
  Pick<AttestedNode, 'attestationType' | 'serialNumber' | 'expiresAt' | 'newSerialNumber' | 'newExpiresAt' | 'canReattest'>
>;

export interface AttestedNodeFilter {
  readonly byAttestationType?: string;
  readonly bySelectorMatch?: SelectorMatch;
  readonly byBanned?: boolean;
  readonly byCanReattest?: boolean;
  /** Unix seconds: nodes whose current SVID expires strictly before this. */
  readonly byExpiresBefore?: number;
}

export interface ListAttestedNodesResult {
  readonly nodes: AttestedNode[];
  readonly nextPageToken: string;
}

export interface JoinToken {
  readonly token: string;
  readonly expiresAt: number;
}

export interface X509Authority {
  /** DER certificate. */
  readonly asn1: Uint8Array;
  readonly tainted: boolean;
}

export interface JwtAuthority {
  /** PKIX DER public key. */
  readonly publicKey: Uint8Array;
  readonly keyId: string;
  readonly expiresAt: number;
  readonly tainted: boolean;
}

/** A trust bundle (own or federated); stored as a JSON document. */
export interface Bundle {
  /** Trust domain name without scheme (`example.org`). */
  readonly trustDomain: string;
  readonly x509Authorities: readonly X509Authority[];
  readonly jwtAuthorities: readonly JwtAuthority[];
  readonly refreshHint: number;
  /** Owned by the store: incremented on every change (input value ignored). */
  readonly sequenceNumber: bigint;
  /** A fetched federated bundle's `spiffe_sequence` as its endpoint served it (absent otherwise). */
  readonly spiffeSequence?: bigint;
}

/** What deleteBundle does with entries that federate with the bundle's trust domain. */
export type BundleDeleteMode = 'restrict' | 'delete' | 'dissociate';
export const BUNDLE_DELETE_MODES: readonly BundleDeleteMode[] = ['restrict', 'delete', 'dissociate'];

export type BundleInput = Omit<Bundle, 'sequenceNumber'> & { readonly sequenceNumber?: bigint };

/** SPIRE's bundle endpoint profiles (datastore.BundleEndpointType). */
export type BundleEndpointProfile = 'https_web' | 'https_spiffe';

/** A federation relationship with a foreign trust domain (SPIRE `federated_trust_domains`). */
export interface FederationRelationship {
  /** Trust domain name without scheme. */
  readonly trustDomain: string;
  readonly bundleEndpointUrl: string;
  readonly bundleEndpointProfile: BundleEndpointProfile;
  /** The endpoint server's SPIFFE ID (https_spiffe); '' for https_web. */
  readonly endpointSpiffeId: string;
  /** Unix seconds. */
  readonly createdAt: number;
}

export type NewFederationRelationship = Omit<FederationRelationship, 'createdAt'>;
/** Which relationship fields an update replaces (absent = all). */
export interface FederationRelationshipMask {
  readonly bundleEndpointUrl?: boolean;
  readonly bundleEndpointProfile?: boolean;
}

export interface DataStore {
  // Registration entries
  createEntry(entry: NewEntry): Promise<Entry>;
  createEntries(entries: readonly NewEntry[]): Promise<BatchCreateResult[]>;
  getEntry(id: string): Promise<Entry | null>;
  updateEntry(update: EntryUpdate, mask?: EntryMask): Promise<Entry>;
  deleteEntry(id: string): Promise<Entry>;
  countEntries(filter?: EntryFilter): Promise<number>;
  listEntries(filter?: EntryFilter, page?: Page): Promise<ListEntriesResult>;
  /** Deletes entries with 0 < expiresAt < before (Unix s); returns how many. */
  pruneExpiredEntries(before: number): Promise<number>;
  /**
   * SPIRE §2.5 authorised entries for an agent (descendants + node-alias descendants). The answer
   * is frozen; while nothing changed, repeated calls may return the very same array (callers may
   * key caches of derived data on it).
   */
  listAuthorizedEntries(agentId: string, nodeSelectors: readonly Selector[]): Promise<readonly Entry[]>;
  /**
   * Builds (or brings up to date with the latest changes) whatever listAuthorizedEntries keeps in
   * memory, now rather than on the next call.
   */
  warmUp?(): Promise<void>;
  /** Deletes entry change events older than before (Unix s); returns how many. */
  pruneEntryEvents(before: number): Promise<number>;

  // Attested nodes
  createAttestedNode(node: NewAttestedNode): Promise<AttestedNode>;
  getAttestedNode(spiffeId: string): Promise<AttestedNode | null>;
  /**
   * getAttestedNode that may answer from memory with a node read at most maxAgeMs ago (by the
   * injected clock). Every node write through this store (update, ban, delete, selectors)
   * drops the node from memory before and after it commits, so such a change is seen at once
   * in this process; a write by another process (another server on the same database) is seen
   * within maxAgeMs. For per-call checks that re-read with getAttestedNode before refusing.
   */
  getCachedAttestedNode?(spiffeId: string, maxAgeMs: number): Promise<AttestedNode | null>;
  /**
   * The database servers in use, `host:port` (PostgreSQL: the host chosen among those of the
   * connection string, undefined while none is; the read replica's when one is configured).
   */
  hosts?(): { readonly primary: string | undefined; readonly readReplica?: string | undefined };
  countAttestedNodes(filter?: AttestedNodeFilter): Promise<number>;
  listAttestedNodes(filter?: AttestedNodeFilter, page?: Page): Promise<ListAttestedNodesResult>;
  updateAttestedNode(spiffeId: string, update: AttestedNodeUpdate): Promise<AttestedNode>;
  /** Blanks the current and new serials (banned ⇔ serial ''). */
  banAttestedNode(spiffeId: string): Promise<AttestedNode>;
  /** Deletes the node and its selectors. */
  deleteAttestedNode(spiffeId: string): Promise<AttestedNode>;
  /** Replaces the node's selectors (deduplicated). */
  setNodeSelectors(spiffeId: string, selectors: readonly Selector[]): Promise<void>;
  getNodeSelectors(spiffeId: string): Promise<Selector[]>;

  // Join tokens
  createJoinToken(token: JoinToken): Promise<void>;
  /** Single use: deletes the token and returns it (null if unknown or already taken). */
  takeJoinToken(token: string): Promise<JoinToken | null>;
  pruneJoinTokens(before: number): Promise<number>;

  // Bundles
  getBundle(trustDomain: string): Promise<Bundle | null>;
  /** Creates or replaces. */
  setBundle(bundle: BundleInput): Promise<Bundle>;
  /** Creates, or adds the authorities not yet present (by DER / key id); refreshHint replaced when non-zero. */
  appendBundle(bundle: BundleInput): Promise<Bundle>;
  /**
   * Removes the authorities that expire at or before `before` (ms) in one transaction (SPIRE's
   * PruneBundle), unless none would be left; returns whether the bundle changed. Several servers
   * append their keys to one bundle, so expired keys leave it this way, never by a replace.
   */
  pruneBundle(trustDomain: string, before: number): Promise<boolean>;
  listBundles(page?: Page): Promise<{ bundles: Bundle[]; nextPageToken: string }>;
  /**
   * Deletes a bundle; what happens to entries that federate with it depends on mode (SPIRE's
   * DeleteMode): 'restrict' (default) refuses with ERR_FAILED_PRECONDITION, 'delete' deletes those
   * entries, 'dissociate' removes the trust domain from their federatesWith. One transaction.
   */
  deleteBundle(trustDomain: string, mode?: BundleDeleteMode): Promise<void>;
  countBundles(): Promise<number>;

  // Federation relationships
  /**
   * Creates a relationship; with trustDomainBundle, creates or replaces that trust domain's bundle
   * in the same transaction. ERR_ALREADY_EXISTS when one exists for the trust domain.
   */
  createFederationRelationship(fr: NewFederationRelationship, trustDomainBundle?: BundleInput): Promise<FederationRelationship>;
  getFederationRelationship(trustDomain: string): Promise<FederationRelationship | null>;
  listFederationRelationships(page?: Page): Promise<{ relationships: FederationRelationship[]; nextPageToken: string }>;
  /** Replaces the masked fields (and the bundle when given); ERR_NOT_FOUND when absent. */
  updateFederationRelationship(
    fr: NewFederationRelationship,
    mask?: FederationRelationshipMask,
    trustDomainBundle?: BundleInput,
  ): Promise<FederationRelationship>;
  /** Deletes the relationship (never its bundle); ERR_NOT_FOUND when absent. */
  deleteFederationRelationship(trustDomain: string): Promise<void>;

  // CA journal
  getCaJournal(name: string): Promise<Uint8Array | null>;
  setCaJournal(name: string, data: Uint8Array): Promise<void>;

  close(): Promise<void>;
}

/** ERR_ALREADY_EXISTS for a "similar entry" (same spiffeId, parentId and selector set); carries it. */
export class SimilarEntryError extends ZtwimError {
  readonly existing: Entry;
  constructor(existing: Entry) {
    super('ERR_ALREADY_EXISTS', 'similar entry already exists', { fields: { entryId: existing.id } });
    this.existing = existing;
  }
}
