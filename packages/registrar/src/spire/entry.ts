// The registrar's own view of a registration entry: SPIFFE IDs as strings, TTLs in seconds.
// Converted to and from the Entry API's protobuf messages in entry-client.ts.

export interface Selector {
  readonly type: string;
  readonly value: string;
}

export interface RegEntry {
  /** '' for an entry not yet created (the server picks one unless the registrar sets `<prefix>.<uuid>`). */
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: readonly Selector[];
  readonly x509SvidTtl: number;
  readonly jwtSvidTtl: number;
  readonly federatesWith: readonly string[];
  readonly admin: boolean;
  readonly downstream: boolean;
  readonly dnsNames: readonly string[];
  readonly hint: string;
  readonly storeSvid: boolean;
}

/** A per-item result of a batch call: gRPC code (0 = OK) and message. */
export interface BatchStatus {
  readonly code: number;
  readonly message: string;
}

/** What the reconciler needs of the server's Entry API. */
export interface EntryClient {
  /** Every entry, paged. */
  listEntries(signal?: AbortSignal): Promise<RegEntry[]>;
  /** The entries whose selectors include `k8s:pod-uid:<uid>` (ListEntries by_selectors SUPERSET). */
  listEntriesOfPod(podUid: string, signal?: AbortSignal): Promise<RegEntry[]>;
  createEntries(entries: readonly RegEntry[], signal?: AbortSignal): Promise<BatchStatus[]>;
  updateEntries(entries: readonly RegEntry[], signal?: AbortSignal): Promise<BatchStatus[]>;
  deleteEntries(ids: readonly string[], signal?: AbortSignal): Promise<BatchStatus[]>;
}
