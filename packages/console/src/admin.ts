// The console's view of the server: admin API calls over the server's Unix socket, turned into
// the plain JSON shapes the web app renders (strings and numbers, SPIFFE IDs as URIs, times as
// Unix seconds). One module so that the HTTP layer never handles protobuf messages.
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import type { DescService } from '@bufbuild/protobuf';
import { spiffeBundleToWire, wireSpiffeIdString, type WireBundleInit } from '@ztwim/core';
import { derToPem, SpiffeBundle, TrustDomain, X509Bundle } from '@ztwim/spiffe';
import {
  AgentService,
  BatchDeleteFederatedBundleRequest_Mode,
  BundleService,
  ChangesService,
  DebugService,
  EntryService,
  LocalAuthorityService,
  ServerInfoService,
  TrustDomainService,
  createUnixGrpcTransport,
  type Agent,
  type Bundle,
  type Entry,
  type GrpcClientTransport,
  type AuthorityState as LocalAuthorityState,
} from '@ztwim/proto';
import { explainEntryOf, type ExplainEntry } from './explain.ts';

export interface SelectorView {
  readonly type: string;
  readonly value: string;
}

export interface EntryView extends ExplainEntry {
  readonly x509SvidTtl: number;
  readonly jwtSvidTtl: number;
  readonly dnsNames: readonly string[];
  readonly admin: boolean;
  readonly downstream: boolean;
  readonly createdAt: number;
}

export interface AgentView {
  readonly id: string;
  readonly attestationType: string;
  readonly selectors: readonly SelectorView[];
  readonly serialNumber: string;
  readonly expiresAt: number;
  readonly banned: boolean;
  readonly canReattest: boolean;
  /** Unix seconds of the agent's last call to this server (ztwim's ServerInfo); absent if not seen since it started or not told (spire-server). */
  readonly lastSeen?: number;
}

/** A key's state on this server (SPIRE's LocalAuthority API); '' for a key of another server or an upstream root. */
export type AuthorityState = 'active' | 'prepared' | 'old' | '';

export interface AuthorityView {
  readonly kind: 'x509' | 'jwt';
  /** Subject (X.509) or key ID (JWT). */
  readonly name: string;
  /** SPIRE's authority ID: the subject key ID (hex) of an X.509 CA, the key ID of a JWT key. */
  readonly authorityId: string;
  readonly notBefore: number;
  readonly expiresAt: number;
  readonly tainted: boolean;
  readonly state: AuthorityState;
}

/** One of this server's keys as the LocalAuthority API reports it. */
export interface LocalAuthorityView {
  readonly kind: 'x509' | 'jwt';
  readonly authorityId: string;
  readonly state: Exclude<AuthorityState, ''>;
  readonly expiresAt: number;
  /** X.509 under an upstream authority: the upstream certificate's subject key ID. */
  readonly upstreamAuthorityId: string;
}

export interface ServerView {
  readonly trustDomain: string;
  readonly serverId: string;
  readonly uptimeSeconds: number;
  readonly agents: number;
  readonly entries: number;
  readonly authorities: readonly AuthorityView[];
  /** This server's X.509 and JWT keys with their states; empty with `localAuthorityError` when the server does not tell. */
  readonly localAuthorities: readonly LocalAuthorityView[];
  readonly localAuthorityError?: string;
  readonly bundleSequence: string;
  readonly refreshHintSeconds: number;
  /** ztwim's ServerInfo: absent, with `serverInfoError`, when the server does not tell (spire-server). */
  readonly about?: AboutView;
  readonly serverInfoError?: string;
}

/** The server's version, plugins and health (ztwim.server.v1.ServerInfo). */
export interface AboutView {
  readonly version: string;
  readonly plugins: ReadonlyArray<{ readonly type: string; readonly name: string; readonly detail: string }>;
  readonly serving: boolean;
  readonly reason: string;
  /** Unix seconds; 0 if never. */
  readonly datastoreLastSuccess: number;
  readonly datastoreHost: string;
}

export interface RelationshipView {
  readonly trustDomain: string;
  readonly bundleEndpointUrl: string;
  readonly profile: string;
  readonly endpointSpiffeId: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly nextPageToken: string;
}

export interface EntryFilter {
  readonly spiffeId?: string;
  readonly parentId?: string;
  /** type:value; entries that have it among their selectors (SPIRE's MATCH_SUPERSET). */
  readonly selector?: string;
  readonly federatesWith?: string;
}

/** A new or changed entry as the web app sends it (the `entry create -data` JSON shape, flattened). */
export interface EntryInput {
  readonly id?: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: readonly SelectorView[];
  readonly federatesWith?: readonly string[];
  readonly x509SvidTtl?: number;
  readonly jwtSvidTtl?: number;
  readonly dnsNames?: readonly string[];
  readonly admin?: boolean;
  readonly downstream?: boolean;
  readonly hint?: string;
  readonly expiresAt?: number;
}

/** Per-item outcome of a batch call: ok, or the gRPC status the server gave. */
export interface ItemResult {
  readonly ok: boolean;
  readonly code: number;
  readonly message: string;
  readonly id: string;
}

export class AdminApiError extends Error {
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.name = 'AdminApiError';
    this.code = code;
  }
}

function splitId(id: string, what: string): { trustDomain: string; path: string } {
  const m = /^spiffe:\/\/([^/]+)(\/.*)?$/.exec(id.trim());
  if (m === null) throw new AdminApiError(`${what}: not a SPIFFE ID: ${JSON.stringify(id)}`, 3);
  return { trustDomain: m[1] as string, path: m[2] ?? '' };
}

/** A batch call's per-item status: the server's refusal as the console's error (code and message kept). */
function throwIfRefused(status: { readonly code: number; readonly message: string } | undefined): void {
  if ((status?.code ?? 0) !== 0) throw new AdminApiError(status?.message ?? 'refused', status?.code ?? 2);
}

function trustDomainOf(s: string): TrustDomain {
  try {
    return TrustDomain.parse(s.trim());
  } catch (e) {
    throw new AdminApiError(`trust domain: ${(e as Error).message}`, 3);
  }
}

function parseSelectorText(s: string): SelectorView {
  const i = s.indexOf(':');
  if (i <= 0 || i === s.length - 1) throw new AdminApiError(`selector ${JSON.stringify(s)}: want type:value`, 3);
  return { type: s.slice(0, i), value: s.slice(i + 1) };
}

export function entryView(e: Entry): EntryView {
  return {
    ...explainEntryOf(e),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    dnsNames: [...e.dnsNames],
    admin: e.admin,
    downstream: e.downstream,
    createdAt: Number(e.createdAt),
  };
}

function withLastSeen(a: AgentView, lastSeen: number | undefined): AgentView {
  return lastSeen === undefined ? a : { ...a, lastSeen };
}

function agentView(a: Agent): AgentView {
  return {
    id: wireSpiffeIdString(a.id),
    attestationType: a.attestationType,
    selectors: a.selectors.map((s) => ({ type: s.type, value: s.value })),
    serialNumber: a.x509svidSerialNumber,
    expiresAt: Number(a.x509svidExpiresAt),
    banned: a.banned,
    canReattest: a.canReattest,
  };
}

/**
 * The subject key ID SPIRE names an X.509 authority by: SHA-1 of the subjectPublicKey bits
 * (RFC 5280 §4.2.1.2 method 1, as SPIRE and ztwim compute it). Computed here from the key's
 * JWK (EC, Ed25519) or PKCS#1 form (RSA), the exact bytes of that BIT STRING, because
 * node:crypto does not expose the certificate's extensions.
 */
export function subjectKeyIdOf(cert: X509Certificate): string {
  const key = cert.publicKey;
  let bits: Buffer;
  if (key.asymmetricKeyType === 'rsa') bits = key.export({ type: 'pkcs1', format: 'der' });
  else {
    const jwk = key.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x ?? '', 'base64url');
    bits = jwk.kty === 'EC' ? Buffer.concat([Buffer.of(4), x, Buffer.from(jwk.y ?? '', 'base64url')]) : x;
  }
  return createHash('sha1').update(bits).digest('hex');
}

function authorities(b: Bundle, states: readonly LocalAuthorityView[] = []): AuthorityView[] {
  const stateOf = (kind: 'x509' | 'jwt', id: string): AuthorityState => states.find((s) => s.kind === kind && s.authorityId === id)?.state ?? '';
  const out: AuthorityView[] = [];
  for (const a of b.x509Authorities) {
    try {
      const c = new X509Certificate(a.asn1);
      const authorityId = subjectKeyIdOf(c);
      out.push({
        kind: 'x509',
        name: c.subject.replace(/\n/g, ', '),
        authorityId,
        notBefore: Math.floor(Date.parse(c.validFrom) / 1000),
        expiresAt: Math.floor(Date.parse(c.validTo) / 1000),
        tainted: a.tainted,
        state: stateOf('x509', authorityId),
      });
    } catch {
      out.push({ kind: 'x509', name: '(unparsable certificate)', authorityId: '', notBefore: 0, expiresAt: 0, tainted: a.tainted, state: '' });
    }
  }
  for (const k of b.jwtAuthorities) {
    out.push({
      kind: 'jwt',
      name: k.keyId,
      authorityId: k.keyId,
      notBefore: 0,
      expiresAt: Number(k.expiresAt),
      tainted: k.tainted,
      state: stateOf('jwt', k.keyId),
    });
  }
  return out;
}

/** The states of one kind as LocalAuthority answers them (active, prepared, old). */
function localStates(
  kind: 'x509' | 'jwt',
  r: { active?: LocalAuthorityState | undefined; prepared?: LocalAuthorityState | undefined; old?: LocalAuthorityState | undefined },
): LocalAuthorityView[] {
  const out: LocalAuthorityView[] = [];
  for (const state of ['active', 'prepared', 'old'] as const) {
    const a = r[state];
    if (a !== undefined) {
      out.push({ kind, authorityId: a.authorityId, state, expiresAt: Number(a.expiresAt), upstreamAuthorityId: a.upstreamAuthoritySubjectKeyId });
    }
  }
  return out;
}

/** PEM of the bundle's X.509 authorities. */
export function bundlePem(b: { x509Authorities: readonly { asn1: Uint8Array }[] }): string {
  return b.x509Authorities.map((a) => derToPem(a.asn1, 'CERTIFICATE')).join('');
}

/** The bundle in SPIFFE bundle format (a JWK Set whose keys carry `use`, Trust Domain and Bundle §4). */
export function bundleSpiffeJson(b: Bundle): object {
  const keys: object[] = [];
  for (const a of b.x509Authorities) {
    const cert = new X509Certificate(a.asn1);
    keys.push({ ...cert.publicKey.export({ format: 'jwk' }), use: 'x509-svid', x5c: [Buffer.from(a.asn1).toString('base64')] });
  }
  for (const k of b.jwtAuthorities) {
    const jwk = createPublicKey({ key: Buffer.from(k.publicKey), format: 'der', type: 'spki' }).export({ format: 'jwk' });
    keys.push({ ...jwk, kid: k.keyId, use: 'jwt-svid' });
  }
  return { keys, spiffe_sequence: Number(b.sequenceNumber), spiffe_refresh_hint: Number(b.refreshHint) };
}

/** The admin API of one server, over its Unix socket. */
export class AdminApi {
  readonly #transport: GrpcClientTransport;
  readonly #clients = new Map<DescService, unknown>();

  constructor(socketPath: string) {
    this.#transport = createUnixGrpcTransport(socketPath);
  }

  #client<S extends DescService>(service: S): Client<S> {
    let c = this.#clients.get(service) as Client<S> | undefined;
    if (c === undefined) this.#clients.set(service, (c = createClient(service, this.#transport)));
    return c;
  }

  close(): void {
    this.#transport.close();
  }

  async server(): Promise<ServerView> {
    const [bundle, info, agents, entries, local, about] = await Promise.all([
      this.#client(BundleService).getBundle({}),
      this.#client(DebugService).getInfo({}),
      this.#client(AgentService).countAgents({}),
      this.#client(EntryService).countEntries({}),
      this.localAuthorities(),
      this.about(),
    ]);
    const leaf = info.svidChain[0];
    return {
      trustDomain: bundle.trustDomain,
      serverId: leaf === undefined ? '' : wireSpiffeIdString(leaf.id),
      uptimeSeconds: info.uptime,
      agents: agents.count,
      entries: entries.count,
      authorities: authorities(bundle, 'error' in local ? [] : local.states),
      localAuthorities: 'error' in local ? [] : local.states,
      ...('error' in local ? { localAuthorityError: local.error } : {}),
      bundleSequence: String(bundle.sequenceNumber),
      refreshHintSeconds: Number(bundle.refreshHint),
      ...('error' in about ? { serverInfoError: about.error } : { about }),
    };
  }

  /** Version, plugins and health: ztwim's own API, so spire-server gives the reason instead. */
  async about(): Promise<AboutView | { error: string }> {
    try {
      const r = await this.#client(ServerInfoService).getServerInfo({});
      return {
        version: r.version,
        plugins: r.plugins.map((p) => ({ type: p.type, name: p.name, detail: p.detail })),
        serving: r.health?.serving ?? false,
        reason: r.health?.reason ?? '',
        datastoreLastSuccess: Math.floor(Number(r.health?.datastoreLastSuccess ?? 0n) / 1000),
        datastoreHost: r.health?.datastoreHost ?? '',
      };
    } catch (e) {
      if (!(e instanceof ConnectError)) throw e;
      return { error: e.code === Code.Unimplemented ? 'the server does not serve ztwim.server.v1.ServerInfo (spire-server)' : e.rawMessage };
    }
  }

  /**
   * This server's X.509 and JWT keys by state (SPIRE's LocalAuthority API). A server that does not
   * answer (an older ztwim, a server still starting) gives the reason instead: the server page
   * still shows the bundle.
   */
  async localAuthorities(): Promise<{ states: LocalAuthorityView[] } | { error: string }> {
    try {
      const c = this.#client(LocalAuthorityService);
      const [x509, jwt] = await Promise.all([c.getX509AuthorityState({}), c.getJWTAuthorityState({})]);
      return { states: [...localStates('x509', x509), ...localStates('jwt', jwt)] };
    } catch (e) {
      if (!(e instanceof ConnectError)) throw e;
      return { error: e.code === Code.Unimplemented ? 'the server does not serve the LocalAuthority API' : e.rawMessage };
    }
  }

  async bundle(): Promise<Bundle> {
    return this.#client(BundleService).getBundle({});
  }

  async agents(pageSize: number, pageToken: string): Promise<Page<AgentView>> {
    const r = await this.#client(AgentService).listAgents({ pageSize, pageToken });
    const items = r.agents.map(agentView);
    const seen = await this.#lastSeen(items.map((a) => a.id));
    return { items: items.map((a) => withLastSeen(a, seen.get(a.id))), nextPageToken: r.nextPageToken };
  }

  /** When the agents last called the server; none from a server without ztwim's ServerInfo (spire-server). */
  async #lastSeen(ids: readonly string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    try {
      const r = await this.#client(ServerInfoService).getAgentsLastSeen({ agentIds: [...ids] });
      return new Map(Object.entries(r.lastSeen).map(([id, ms]) => [id, Math.floor(Number(ms) / 1000)]));
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.Unimplemented) return new Map();
      throw e;
    }
  }

  async agent(id: string): Promise<AgentView> {
    const a = agentView(await this.#client(AgentService).getAgent({ id: splitId(id, 'agent ID') }));
    return withLastSeen(a, (await this.#lastSeen([a.id])).get(a.id));
  }

  async banAgent(id: string): Promise<void> {
    await this.#client(AgentService).banAgent({ id: splitId(id, 'agent ID') });
  }

  async evictAgent(id: string): Promise<void> {
    await this.#client(AgentService).deleteAgent({ id: splitId(id, 'agent ID') });
  }

  async createJoinToken(ttlSeconds: number, agentId: string): Promise<{ token: string; expiresAt: number }> {
    const r = await this.#client(AgentService).createJoinToken({ ttl: ttlSeconds, ...(agentId === '' ? {} : { agentId: splitId(agentId, 'agent ID') }) });
    return { token: r.value, expiresAt: Number(r.expiresAt) };
  }

  async entries(pageSize: number, pageToken: string, f: EntryFilter): Promise<Page<EntryView>> {
    const filter: Record<string, unknown> = {};
    if (f.spiffeId !== undefined && f.spiffeId !== '') filter['bySpiffeId'] = splitId(f.spiffeId, 'SPIFFE ID filter');
    if (f.parentId !== undefined && f.parentId !== '') filter['byParentId'] = splitId(f.parentId, 'parent ID filter');
    if (f.selector !== undefined && f.selector !== '') filter['bySelectors'] = { selectors: [parseSelectorText(f.selector)], match: 3 /* MATCH_SUPERSET */ };
    if (f.federatesWith !== undefined && f.federatesWith !== '') {
      const td = f.federatesWith.startsWith('spiffe://') ? f.federatesWith : `spiffe://${f.federatesWith}`;
      filter['byFederatesWith'] = { trustDomains: [td], match: 3 };
    }
    const r = await this.#client(EntryService).listEntries({ pageSize, pageToken, filter });
    return { items: r.entries.map(entryView), nextPageToken: r.nextPageToken };
  }

  /** Every item of a paged list call, pages of 1000. */
  async #all<T>(page: (pageToken: string) => Promise<{ items: readonly T[]; nextPageToken: string }>): Promise<T[]> {
    const out: T[] = [];
    let pageToken = '';
    for (;;) {
      const r = await page(pageToken);
      out.push(...r.items);
      pageToken = r.nextPageToken;
      if (pageToken === '') return out;
    }
  }

  /** Every entry (paged through), for export and Explain. */
  async allEntries(): Promise<EntryView[]> {
    return this.#all((pageToken) => this.entries(1000, pageToken, {}));
  }

  #toEntry(e: EntryInput): Record<string, unknown> {
    if (e.selectors.length === 0) throw new AdminApiError('an entry needs at least one selector', 3);
    return {
      ...(e.id === undefined || e.id === '' ? {} : { id: e.id }),
      spiffeId: splitId(e.spiffeId, 'SPIFFE ID'),
      parentId: splitId(e.parentId, 'parent ID'),
      selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })),
      federatesWith: [...(e.federatesWith ?? [])],
      x509SvidTtl: e.x509SvidTtl ?? 0,
      jwtSvidTtl: e.jwtSvidTtl ?? 0,
      dnsNames: [...(e.dnsNames ?? [])],
      admin: e.admin ?? false,
      downstream: e.downstream ?? false,
      hint: e.hint ?? '',
      expiresAt: BigInt(e.expiresAt ?? 0),
    };
  }

  async createEntries(entries: readonly EntryInput[]): Promise<ItemResult[]> {
    const r = await this.#client(EntryService).batchCreateEntry({ entries: entries.map((e) => this.#toEntry(e)) });
    return r.results.map((x) => ({ ok: (x.status?.code ?? 0) === 0, code: x.status?.code ?? 0, message: x.status?.message ?? '', id: x.entry?.id ?? '' }));
  }

  async updateEntry(e: EntryInput): Promise<ItemResult> {
    if (e.id === undefined || e.id === '') throw new AdminApiError('an entry ID is required to update an entry', 3);
    const r = await this.#client(EntryService).batchUpdateEntry({ entries: [this.#toEntry(e)] });
    const x = r.results[0];
    return { ok: (x?.status?.code ?? 0) === 0, code: x?.status?.code ?? 0, message: x?.status?.message ?? '', id: e.id };
  }

  async deleteEntry(id: string): Promise<ItemResult> {
    const r = await this.#client(EntryService).batchDeleteEntry({ ids: [id] });
    const x = r.results[0];
    return { ok: (x?.status?.code ?? 0) === 0, code: x?.status?.code ?? 0, message: x?.status?.message ?? '', id };
  }

  async relationships(): Promise<RelationshipView[]> {
    const r = await this.#client(TrustDomainService).listFederationRelationships({ pageSize: 1000 });
    return r.federationRelationships.map((f) => ({
      trustDomain: f.trustDomain,
      bundleEndpointUrl: f.bundleEndpointUrl,
      profile: f.bundleEndpointProfile.case ?? '',
      endpointSpiffeId: f.bundleEndpointProfile.case === 'httpsSpiffe' ? f.bundleEndpointProfile.value.endpointSpiffeId : '',
    }));
  }

  async federatedBundles(): Promise<{ trustDomain: string; authorities: AuthorityView[] }[]> {
    const r = await this.#client(BundleService).listFederatedBundles({ pageSize: 1000 });
    return r.bundles.map((b) => ({ trustDomain: b.trustDomain, authorities: authorities(b) }));
  }

  /** A federated bundle, for download. */
  async federatedBundle(trustDomain: string): Promise<Bundle> {
    return this.#client(BundleService).getFederatedBundle({ trustDomain: trustDomainOf(trustDomain).name });
  }

  /**
   * Creates or replaces a federated bundle (as `bundle set`): PEM certificates (X.509 authorities
   * only) or a SPIFFE bundle document (X.509 and JWT authorities, refresh hint, sequence).
   */
  async setFederatedBundle(trustDomain: string, format: 'pem' | 'spiffe', data: string): Promise<void> {
    const td = trustDomainOf(trustDomain);
    let bundle: WireBundleInit;
    try {
      if (format === 'pem') {
        const x509 = X509Bundle.parse(td, data);
        if (x509.authorities().length === 0) throw new AdminApiError('no CERTIFICATE PEM block', 3);
        bundle = {
          trustDomain: td.name,
          x509Authorities: x509.authorities().map((asn1) => ({ asn1, tainted: false })),
          jwtAuthorities: [],
          refreshHint: 0n,
          sequenceNumber: 0n,
        };
      } else bundle = spiffeBundleToWire(SpiffeBundle.parse(td, data));
    } catch (e) {
      throw new AdminApiError(`bundle data: ${(e as Error).message}`, 3);
    }
    const r = await this.#client(BundleService).batchSetFederatedBundle({ bundle: [bundle] });
    throwIfRefused(r.results[0]?.status);
  }

  /** Deletes a federated bundle; refused while entries federate with it (SPIRE's RESTRICT mode). */
  async deleteFederatedBundle(trustDomain: string): Promise<void> {
    const td = trustDomainOf(trustDomain);
    const r = await this.#client(BundleService).batchDeleteFederatedBundle({ trustDomains: [td.name], mode: BatchDeleteFederatedBundleRequest_Mode.RESTRICT });
    throwIfRefused(r.results[0]?.status);
  }

  /** Every agent (paged through), for the dashboard's entries per agent. */
  async allAgents(): Promise<AgentView[]> {
    return this.#all((pageToken) => this.agents(1000, pageToken));
  }

  /**
   * A cheap fingerprint of what the lists show, for live updates: the counts, the bundle's
   * sequence number, and the server's write revision (ztwim.server.v1.Changes: moves on every
   * entry, agent, bundle or federation write through its API, so an edit that leaves the counts
   * alone shows too). A server without that service (spire-server) gives counts and sequence only.
   */
  async fingerprint(): Promise<string> {
    const [a, e, b, r] = await Promise.all([
      this.#client(AgentService).countAgents({}),
      this.#client(EntryService).countEntries({}),
      this.#client(BundleService).getBundle({ outputMask: { x509Authorities: false, jwtAuthorities: false } }),
      this.#revision(),
    ]);
    return `${a.count}/${e.count}/${b.sequenceNumber}/${r}`;
  }

  #noRevision = false;

  async #revision(): Promise<string> {
    if (this.#noRevision) return '-';
    try {
      const r = await this.#client(ChangesService).getRevision({});
      return `${r.startedAt}.${r.writes}`;
    } catch (e) {
      if (!(e instanceof ConnectError && e.code === Code.Unimplemented)) throw e;
      this.#noRevision = true;
      return '-';
    }
  }
}
