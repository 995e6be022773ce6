import {
  ZtwimError,
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  isZtwimError,
  notFound,
  randomUuid,
  unixSeconds,
  type Clock,
  type Logger,
  type Random,
} from '@ztwim/core';
import {
  BUNDLE_DELETE_MODES,
  ENTRY_FIELDS,
  SimilarEntryError,
  type BundleDeleteMode,
  type AttestedNode,
  type AttestedNodeFilter,
  type AttestedNodeUpdate,
  type BatchCreateResult,
  type Bundle,
  type BundleInput,
  type DataStore,
  type FederationRelationship,
  type FederationRelationshipMask,
  type NewFederationRelationship,
  type Entry,
  type EntryFilter,
  type EntryMask,
  type EntryUpdate,
  type JoinToken,
  type JwtAuthority,
  type ListAttestedNodesResult,
  type ListEntriesResult,
  type NewAttestedNode,
  type NewEntry,
  type Page,
  type Selector,
  type X509Authority,
} from '../datastore.ts';
import { certificateValidity } from '@ztwim/spiffe';
import { AuthorizedEntryIndex } from './entry-index.ts';
import type { Row, SqlConn, SqlDriver, SqlValue } from './driver.ts';
import {
  canonicalSelectorKey,
  checkSelectors,
  encodePageToken,
  entryWhere,
  nodeWhere,
  normalizeTrustDomain,
  pageArgs,
  type PageArgs,
  type Where,
} from './filters.ts';

export interface SqlDataStoreOptions {
  readonly clock: Clock;
  readonly random: Random;
  /**
   * A read replica (SPIRE's ro_connection_string) for the reads that tolerate staleness: the full
   * read of the entries that builds the authorised-entry index, as SPIRE's entry cache reads them
   * with TolerateStale. Every other read, and every write, goes to `driver`.
   */
  readonly staleReads?: SqlDriver;
  readonly logger?: Logger;
}

const ENTRY_COLS =
  'e.seq, e.entry_id, e.spiffe_id, e.parent_id, e.x509_svid_ttl, e.jwt_svid_ttl, e.admin, e.downstream, e.expires_at, ' +
  'e.revision_number, e.store_svid, e.hint, e.created_at, e.selectors, e.dns_names, e.federates_with';
const NODE_COLS =
  'n.seq, n.spiffe_id, n.data_type, n.serial_number, n.expires_at, n.new_serial_number, n.new_expires_at, n.can_reattest, ' + 'n.created_at, n.updated_at';
const ID_RE = /^[A-Za-z0-9._-]{1,255}$/;
const IN_CHUNK = 500;
/** How many attested nodes getCachedAttestedNode remembers (the oldest reads go first). */
const MAX_CACHED_NODES = 4096;
/** Items per "similar entry" lookup (3 parameters each). */
const SIM_CHUNK = 300;
/** Entries per multi-row INSERT (16 parameters each). */
const INSERT_CHUNK = 500;
/** Selector/federation rows per multi-row INSERT. */
const CHILD_CHUNK = 2000;

const num = (v: unknown): number => Number(v ?? 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : String(v ?? ''));
const bool = (v: unknown): boolean => Number(v) !== 0;
const b = (v: boolean): number => (v ? 1 : 0);

function whereSql(w: Where, extra: string[] = []): string {
  const all = [...w.clauses, ...extra];
  return all.length === 0 ? '' : ` WHERE ${all.join(' AND ')}`;
}

function rowToEntry(r: Row): Entry {
  return {
    id: str(r['entry_id']),
    spiffeId: str(r['spiffe_id']),
    parentId: str(r['parent_id']),
    selectors: JSON.parse(str(r['selectors'])) as Selector[],
    x509SvidTtl: num(r['x509_svid_ttl']),
    jwtSvidTtl: num(r['jwt_svid_ttl']),
    federatesWith: JSON.parse(str(r['federates_with'])) as string[],
    admin: bool(r['admin']),
    downstream: bool(r['downstream']),
    expiresAt: num(r['expires_at']),
    dnsNames: JSON.parse(str(r['dns_names'])) as string[],
    revisionNumber: num(r['revision_number']),
    storeSvid: bool(r['store_svid']),
    hint: str(r['hint']),
    createdAt: num(r['created_at']),
  };
}

function rowToNode(r: Row, selectors: readonly Selector[]): AttestedNode {
  return {
    spiffeId: str(r['spiffe_id']),
    attestationType: str(r['data_type']),
    serialNumber: str(r['serial_number']),
    expiresAt: num(r['expires_at']),
    newSerialNumber: str(r['new_serial_number']),
    newExpiresAt: num(r['new_expires_at']),
    canReattest: bool(r['can_reattest']),
    createdAt: num(r['created_at']),
    updatedAt: num(r['updated_at']),
    selectors,
  };
}

function checkInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalidArgument(`${what} must be an integer`);
  return v;
}

function checkStrings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalidArgument(`${what} must be a list of strings`);
  return [...new Set(v as string[])];
}

function checkSpiffeId(v: unknown, what: string): string {
  if (typeof v !== 'string' || !v.startsWith('spiffe://') || v.length <= 'spiffe://'.length) {
    throw invalidArgument(`${what} must be a spiffe:// ID`);
  }
  return v;
}

/** Entry fields after validation (everything but id, revision and creation time). */
type EntryBody = Omit<Entry, 'id' | 'revisionNumber' | 'createdAt'>;

function checkEntryBody(e: Omit<Entry, 'id' | 'revisionNumber' | 'createdAt'>): EntryBody {
  const ttl = (v: unknown, what: string): number => {
    const n = checkInt(v, what);
    if (n < 0 || n > 0x7fffffff) throw invalidArgument(`${what} must be between 0 and 2^31-1`);
    return n;
  };
  if (typeof e.admin !== 'boolean' || typeof e.downstream !== 'boolean' || typeof e.storeSvid !== 'boolean') {
    throw invalidArgument('admin, downstream and storeSvid must be booleans');
  }
  if (typeof e.hint !== 'string') throw invalidArgument('hint must be a string');
  return {
    spiffeId: checkSpiffeId(e.spiffeId, 'spiffeId'),
    parentId: checkSpiffeId(e.parentId, 'parentId'),
    selectors: checkSelectors(e.selectors, 'selectors'),
    x509SvidTtl: ttl(e.x509SvidTtl, 'x509SvidTtl'),
    jwtSvidTtl: ttl(e.jwtSvidTtl, 'jwtSvidTtl'),
    federatesWith: checkStrings(e.federatesWith, 'federatesWith'),
    admin: e.admin,
    downstream: e.downstream,
    expiresAt: checkInt(e.expiresAt, 'expiresAt'),
    dnsNames: checkStrings(e.dnsNames, 'dnsNames'),
    storeSvid: e.storeSvid,
    hint: e.hint,
  };
}

function withDefaults(n: NewEntry): EntryBody {
  if (typeof n !== 'object' || n === null) throw invalidArgument('entry must be an object');
  return checkEntryBody({
    spiffeId: n.spiffeId,
    parentId: n.parentId,
    selectors: n.selectors,
    x509SvidTtl: n.x509SvidTtl ?? 0,
    jwtSvidTtl: n.jwtSvidTtl ?? 0,
    federatesWith: n.federatesWith ?? [],
    admin: n.admin ?? false,
    downstream: n.downstream ?? false,
    expiresAt: n.expiresAt ?? 0,
    dnsNames: n.dnsNames ?? [],
    storeSvid: n.storeSvid ?? false,
    hint: n.hint ?? '',
  });
}

const REL_COLS = 'f.trust_domain, f.bundle_endpoint_url, f.bundle_endpoint_profile, f.endpoint_spiffe_id, f.created_at';

function rowToRelationship(r: Row): FederationRelationship {
  const profile = str(r['bundle_endpoint_profile']);
  return {
    trustDomain: str(r['trust_domain']),
    bundleEndpointUrl: str(r['bundle_endpoint_url']),
    bundleEndpointProfile: profile === 'https_spiffe' ? 'https_spiffe' : 'https_web',
    endpointSpiffeId: str(r['endpoint_spiffe_id']),
    createdAt: num(r['created_at']),
  };
}

/** SPIRE's validateFederationRelationship: what the masked fields must hold. */
function checkRelationship(fr: NewFederationRelationship, mask: FederationRelationshipMask): NewFederationRelationship {
  if (typeof fr !== 'object' || fr === null) throw invalidArgument('federation relationship is nil');
  if (typeof fr.trustDomain !== 'string' || fr.trustDomain === '') throw invalidArgument('trust domain is required');
  const all = Object.keys(mask).length === 0;
  if ((all || mask.bundleEndpointUrl === true) && (typeof fr.bundleEndpointUrl !== 'string' || fr.bundleEndpointUrl === '')) {
    throw invalidArgument('bundle endpoint URL is required');
  }
  if (all || mask.bundleEndpointProfile === true) {
    if (fr.bundleEndpointProfile === 'https_spiffe') {
      if (typeof fr.endpointSpiffeId !== 'string' || fr.endpointSpiffeId === '') throw invalidArgument('bundle endpoint SPIFFE ID is required');
    } else if (fr.bundleEndpointProfile !== 'https_web') {
      throw invalidArgument(`unknown bundle endpoint profile type: ${JSON.stringify(fr.bundleEndpointProfile)}`);
    }
  }
  return {
    trustDomain: normalizeTrustDomain(fr.trustDomain),
    bundleEndpointUrl: fr.bundleEndpointUrl,
    bundleEndpointProfile: fr.bundleEndpointProfile,
    endpointSpiffeId: fr.bundleEndpointProfile === 'https_spiffe' ? fr.endpointSpiffeId : '',
  };
}

interface BundleDoc {
  trustDomain: string;
  x509Authorities: Array<{ asn1: string; tainted: boolean }>;
  jwtAuthorities: Array<{ publicKey: string; keyId: string; expiresAt: number; tainted: boolean }>;
  refreshHint: number;
  /** Decimal string: a fetched bundle's spiffe_sequence. */
  spiffeSequence?: string;
}

function bundleToDoc(bd: BundleInput, td: string): Buffer {
  const doc: BundleDoc = {
    trustDomain: td,
    x509Authorities: bd.x509Authorities.map((a) => ({ asn1: Buffer.from(a.asn1).toString('base64'), tainted: a.tainted })),
    jwtAuthorities: bd.jwtAuthorities.map((k) => ({
      publicKey: Buffer.from(k.publicKey).toString('base64'),
      keyId: k.keyId,
      expiresAt: k.expiresAt,
      tainted: k.tainted,
    })),
    refreshHint: bd.refreshHint,
    ...(bd.spiffeSequence === undefined ? {} : { spiffeSequence: bd.spiffeSequence.toString() }),
  };
  return Buffer.from(JSON.stringify(doc));
}

function docToBundle(data: unknown, seq: unknown): Bundle {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as Uint8Array);
  const doc = JSON.parse(buf.toString('utf8')) as BundleDoc;
  return {
    trustDomain: doc.trustDomain,
    x509Authorities: doc.x509Authorities.map((a): X509Authority => ({ asn1: new Uint8Array(Buffer.from(a.asn1, 'base64')), tainted: a.tainted })),
    jwtAuthorities: doc.jwtAuthorities.map((k): JwtAuthority => ({
      publicKey: new Uint8Array(Buffer.from(k.publicKey, 'base64')),
      keyId: k.keyId,
      expiresAt: k.expiresAt,
      tainted: k.tainted,
    })),
    refreshHint: doc.refreshHint,
    sequenceNumber: BigInt(str(seq)),
    ...(doc.spiffeSequence === undefined ? {} : { spiffeSequence: BigInt(doc.spiffeSequence) }),
  };
}

function checkBundle(bd: BundleInput): string {
  if (typeof bd !== 'object' || bd === null || typeof bd.trustDomain !== 'string' || bd.trustDomain === '') {
    throw invalidArgument('bundle must have a trust domain');
  }
  if (!Array.isArray(bd.x509Authorities) || !Array.isArray(bd.jwtAuthorities)) {
    throw invalidArgument('bundle authorities must be lists');
  }
  if (!bd.x509Authorities.every((a) => a.asn1 instanceof Uint8Array && typeof a.tainted === 'boolean')) {
    throw invalidArgument('bundle x509 authority must have DER bytes and a tainted flag');
  }
  if (!bd.jwtAuthorities.every((k) => k.publicKey instanceof Uint8Array && typeof k.keyId === 'string' && typeof k.expiresAt === 'number')) {
    throw invalidArgument('bundle jwt authority must have a public key, key id and expiry');
  }
  checkInt(bd.refreshHint, 'refreshHint');
  return normalizeTrustDomain(bd.trustDomain);
}

/**
 * The DataStore over a SqlDriver: one implementation of the semantics for SQLite and Postgres.
 * Writes run in transactions; every entry change appends a row to entry_events, which the
 * in-memory authorised-entry index replays (so several servers on one Postgres stay coherent).
 */
export class SqlDataStore implements DataStore {
  protected readonly driver: SqlDriver;
  protected readonly clock: Clock;
  private readonly random: Random;
  private readonly index: AuthorizedEntryIndex;
  /** Nodes read through getCachedAttestedNode, by SPIFFE ID, with the clock time of the read. */
  private readonly nodeCache = new Map<string, { readonly node: AttestedNode; readonly at: number }>();
  /** Bumped before and after every node write; a read that saw it change is not cached. */
  private nodeWrites = 0;
  private closed = false;

  constructor(driver: SqlDriver, opts: SqlDataStoreOptions) {
    this.driver = driver;
    this.clock = opts.clock;
    this.random = opts.random;
    this.index = new AuthorizedEntryIndex(driver, opts.clock, opts.staleReads, opts.logger);
  }

  private now(): number {
    return unixSeconds(this.clock.now());
  }

  private checkOpen(): void {
    if (this.closed) throw new ZtwimError('ERR_DATASTORE', 'datastore: closed');
  }

  // ---- registration entries ----

  /**
   * Inserts a batch in a handful of statements: one lock call, one "similar entry" lookup and one
   * id lookup per chunk, then multi-row inserts. Results keep the input order; an item that is
   * similar to an earlier item of the same batch gets SimilarEntryError carrying that item.
   */
  private async insertEntries(
    c: SqlConn,
    items: ReadonlyArray<{ readonly id: string | undefined; readonly body: EntryBody }>,
    now: number,
  ): Promise<Array<Entry | ZtwimError>> {
    if (items.length === 0) return [];
    const keys = items.map((it) => canonicalSelectorKey(it.body.selectors));
    const simKey = (spiffeId: string, parentId: string, key: string): string => JSON.stringify([spiffeId, parentId, key]);
    await c.lockMany(items.map((it) => `entry:${JSON.stringify([it.body.spiffeId, it.body.parentId])}`));
    const similar = new Map<string, Entry>();
    const takenIds = new Set<string>();
    for (let i = 0; i < items.length; i += SIM_CHUNK) {
      const chunk = items.slice(i, i + SIM_CHUNK);
      const params: SqlValue[] = [];
      const ors = chunk.map((it, j) => {
        params.push(it.body.spiffeId, it.body.parentId, keys[i + j] ?? '');
        return '(e.spiffe_id = ? AND e.parent_id = ? AND e.selector_key = ?)';
      });
      const rows = await c.all(`SELECT ${ENTRY_COLS}, e.selector_key FROM registered_entries e WHERE ${ors.join(' OR ')}`, params);
      for (const r of rows) {
        const e = rowToEntry(r);
        similar.set(simKey(e.spiffeId, e.parentId, str(r['selector_key'])), e);
      }
      const custom = chunk.flatMap((it) => (it.id === undefined ? [] : [it.id]));
      if (custom.length > 0) {
        const idRows = await c.all(`SELECT entry_id FROM registered_entries WHERE entry_id IN (${custom.map(() => '?').join(', ')})`, custom);
        for (const r of idRows) takenIds.add(str(r['entry_id']));
      }
    }
    const out: Array<Entry | ZtwimError> = [];
    const pending: Array<{ readonly at: number; readonly entry: Entry; readonly key: string }> = [];
    items.forEach((it, i) => {
      const key = keys[i] ?? '';
      const sk = simKey(it.body.spiffeId, it.body.parentId, key);
      const existing = similar.get(sk);
      if (existing !== undefined) {
        out.push(new SimilarEntryError(existing));
        return;
      }
      if (it.id !== undefined && takenIds.has(it.id)) {
        out.push(new ZtwimError('ERR_ALREADY_EXISTS', 'entry id already exists', { fields: { entryId: it.id } }));
        return;
      }
      let id = it.id;
      while (id === undefined || takenIds.has(id)) id = randomUuid(this.random);
      takenIds.add(id);
      const entry: Entry = { id, ...it.body, revisionNumber: 0, createdAt: now };
      similar.set(sk, entry);
      pending.push({ at: out.length, entry, key });
      out.push(entry);
    });
    const seqs = new Map<string, number>();
    for (let i = 0; i < pending.length; i += INSERT_CHUNK) {
      const chunk = pending.slice(i, i + INSERT_CHUNK);
      const params: SqlValue[] = [];
      for (const { entry: e, key } of chunk) {
        params.push(
          e.id,
          e.spiffeId,
          e.parentId,
          key,
          e.x509SvidTtl,
          e.jwtSvidTtl,
          b(e.admin),
          b(e.downstream),
          e.expiresAt,
          b(e.storeSvid),
          e.hint,
          now,
          now,
          JSON.stringify(e.selectors),
          JSON.stringify(e.dnsNames),
          JSON.stringify(e.federatesWith),
        );
      }
      const rows = await c.all(
        'INSERT INTO registered_entries (entry_id, spiffe_id, parent_id, selector_key, x509_svid_ttl, jwt_svid_ttl, admin, ' +
          'downstream, expires_at, revision_number, store_svid, hint, created_at, updated_at, selectors, dns_names, federates_with) ' +
          `VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)').join(', ')} ` +
          'ON CONFLICT (entry_id) DO NOTHING RETURNING seq, entry_id',
        params,
      );
      for (const r of rows) seqs.set(str(r['entry_id']), num(r['seq']));
    }
    const inserted: Array<{ seq: number; body: EntryBody }> = [];
    for (const p of pending) {
      const seq = seqs.get(p.entry.id);
      if (seq === undefined) {
        // Lost a race on a custom id with a writer that does not hold our lock key.
        out[p.at] = new ZtwimError('ERR_ALREADY_EXISTS', 'entry id already exists', { fields: { entryId: p.entry.id } });
      } else {
        inserted.push({ seq, body: p.entry });
      }
    }
    await this.writeEntryChildren(c, inserted);
    await this.addEvents(
      c,
      inserted.map((x) => (x.body as Entry).id),
      now,
    );
    return out;
  }

  private async writeEntryChildren(c: SqlConn, rows: ReadonlyArray<{ seq: number; body: EntryBody }>): Promise<void> {
    const sels: SqlValue[][] = [];
    const feds: SqlValue[][] = [];
    for (const { seq, body } of rows) {
      for (const s of body.selectors) sels.push([seq, s.type, s.value]);
      for (const t of new Set(body.federatesWith.map(normalizeTrustDomain))) feds.push([seq, t]);
    }
    for (let i = 0; i < sels.length; i += CHILD_CHUNK) {
      const chunk = sels.slice(i, i + CHILD_CHUNK);
      await c.run(`INSERT INTO entry_selectors (entry_seq, type, value) VALUES ${chunk.map(() => '(?, ?, ?)').join(', ')}`, chunk.flat());
    }
    for (let i = 0; i < feds.length; i += CHILD_CHUNK) {
      const chunk = feds.slice(i, i + CHILD_CHUNK);
      await c.run(`INSERT INTO entry_federates (entry_seq, trust_domain) VALUES ${chunk.map(() => '(?, ?)').join(', ')}`, chunk.flat());
    }
  }

  private async addEvents(c: SqlConn, ids: readonly string[], now: number): Promise<void> {
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      await c.run(
        `INSERT INTO entry_events (entry_id, created_at) VALUES ${chunk.map(() => '(?, ?)').join(', ')}`,
        chunk.flatMap((id) => [id, now]),
      );
    }
  }

  private static checkCustomId(id: unknown): string | undefined {
    if (id === undefined) return undefined;
    if (typeof id !== 'string' || !ID_RE.test(id)) {
      throw invalidArgument('invalid entry id: at most 255 characters of [A-Za-z0-9._-]');
    }
    return id;
  }

  async createEntry(entry: NewEntry): Promise<Entry> {
    this.checkOpen();
    const id = SqlDataStore.checkCustomId(entry?.id);
    const body = withDefaults(entry);
    const now = this.now();
    const [r] = await this.driver.tx((c) => this.insertEntries(c, [{ id, body }], now));
    if (r === undefined) throw new ZtwimError('ERR_DATASTORE', 'datastore: entry insert returned nothing');
    if (r instanceof ZtwimError) throw r;
    return r;
  }

  async createEntries(entries: readonly NewEntry[]): Promise<BatchCreateResult[]> {
    this.checkOpen();
    if (!Array.isArray(entries)) throw invalidArgument('entries must be a list');
    const now = this.now();
    const checked = entries.map((n): { id: string | undefined; body: EntryBody } | ZtwimError => {
      try {
        return { id: SqlDataStore.checkCustomId(n?.id), body: withDefaults(n) };
      } catch (err) {
        if (isZtwimError(err, 'ERR_INVALID_ARGUMENT')) return err;
        throw err;
      }
    });
    const valid = checked.filter((x): x is { id: string | undefined; body: EntryBody } => !(x instanceof ZtwimError));
    const results = valid.length === 0 ? [] : await this.driver.tx((c) => this.insertEntries(c, valid, now));
    let k = 0;
    return checked.map((x): BatchCreateResult => {
      const r = x instanceof ZtwimError ? x : results[k++];
      if (r === undefined) throw new ZtwimError('ERR_DATASTORE', 'datastore: batch result missing');
      return r instanceof ZtwimError ? { ok: false, error: r } : { ok: true, entry: r };
    });
  }

  async getEntry(id: string): Promise<Entry | null> {
    this.checkOpen();
    if (typeof id !== 'string') throw invalidArgument('entry id must be a string');
    const rows = await this.driver.all(`SELECT ${ENTRY_COLS} FROM registered_entries e WHERE e.entry_id = ?`, [id]);
    return rows[0] === undefined ? null : rowToEntry(rows[0]);
  }

  async updateEntry(update: EntryUpdate, mask?: EntryMask): Promise<Entry> {
    this.checkOpen();
    if (typeof update !== 'object' || update === null || typeof update.id !== 'string' || update.id === '') {
      throw invalidArgument('missing entry ID');
    }
    if (mask !== undefined && (typeof mask !== 'object' || mask === null)) throw invalidArgument('invalid entry mask');
    const now = this.now();
    return this.driver.tx(async (c) => {
      const rows = await c.all(`SELECT ${ENTRY_COLS} FROM registered_entries e WHERE e.entry_id = ?`, [update.id]);
      const row = rows[0];
      if (row === undefined) throw notFound('entry not found', { fields: { entryId: update.id } });
      const old = rowToEntry(row);
      const merged: Record<string, unknown> = { ...old };
      for (const f of ENTRY_FIELDS) {
        if (mask === undefined || mask[f] === true) merged[f] = update[f];
      }
      const body = checkEntryBody(merged as unknown as EntryBody);
      const seq = num(row['seq']);
      await c.run(
        'UPDATE registered_entries SET spiffe_id = ?, parent_id = ?, selector_key = ?, x509_svid_ttl = ?, jwt_svid_ttl = ?, ' +
          'admin = ?, downstream = ?, expires_at = ?, revision_number = revision_number + 1, store_svid = ?, hint = ?, ' +
          'updated_at = ?, selectors = ?, dns_names = ?, federates_with = ? WHERE seq = ?',
        [
          body.spiffeId,
          body.parentId,
          canonicalSelectorKey(body.selectors),
          body.x509SvidTtl,
          body.jwtSvidTtl,
          b(body.admin),
          b(body.downstream),
          body.expiresAt,
          b(body.storeSvid),
          body.hint,
          now,
          JSON.stringify(body.selectors),
          JSON.stringify(body.dnsNames),
          JSON.stringify(body.federatesWith),
          seq,
        ],
      );
      await c.run('DELETE FROM entry_selectors WHERE entry_seq = ?', [seq]);
      await c.run('DELETE FROM entry_federates WHERE entry_seq = ?', [seq]);
      await this.writeEntryChildren(c, [{ seq, body }]);
      await this.addEvents(c, [old.id], now);
      return { id: old.id, ...body, revisionNumber: old.revisionNumber + 1, createdAt: old.createdAt };
    });
  }

  async deleteEntry(id: string): Promise<Entry> {
    this.checkOpen();
    if (typeof id !== 'string' || id === '') throw invalidArgument('missing entry ID');
    const now = this.now();
    return this.driver.tx(async (c) => {
      const rows = await c.all(`DELETE FROM registered_entries WHERE entry_id = ? RETURNING ${ENTRY_COLS.replaceAll('e.', '')}`, [id]);
      const row = rows[0];
      if (row === undefined) throw notFound('entry not found', { fields: { entryId: id } });
      await this.addEvents(c, [id], now);
      return rowToEntry(row);
    });
  }

  async countEntries(filter?: EntryFilter): Promise<number> {
    this.checkOpen();
    const w = entryWhere(filter);
    const rows = await this.driver.all(`SELECT COUNT(*) AS n FROM registered_entries e${whereSql(w)}`, w.params);
    return num(rows[0]?.['n']);
  }

  private async pageQuery(table: string, alias: string, cols: string, w: Where, p: PageArgs): Promise<{ rows: Row[]; last: number; more: boolean }> {
    const params = [...w.params];
    const extra: string[] = [];
    if (p.after > 0) {
      extra.push(`${alias}.seq > ?`);
      params.push(p.after);
    }
    let sql = `SELECT ${cols} FROM ${table} ${alias}${whereSql(w, extra)} ORDER BY ${alias}.seq`;
    if (p.limit > 0) {
      sql += ' LIMIT ?';
      params.push(p.limit + 1);
    }
    const rows = await this.driver.all(sql, params);
    const more = p.limit > 0 && rows.length > p.limit;
    if (more) rows.length = p.limit;
    const lastRow = rows[rows.length - 1];
    return { rows, last: lastRow === undefined ? 0 : num(lastRow['seq']), more };
  }

  async listEntries(filter?: EntryFilter, page?: Page): Promise<ListEntriesResult> {
    this.checkOpen();
    const w = entryWhere(filter);
    const p = pageArgs('e', page);
    const r = await this.pageQuery('registered_entries', 'e', ENTRY_COLS, w, p);
    return { entries: r.rows.map(rowToEntry), nextPageToken: r.more ? encodePageToken('e', r.last) : '' };
  }

  async pruneExpiredEntries(before: number): Promise<number> {
    this.checkOpen();
    checkInt(before, 'before');
    const now = this.now();
    return this.driver.tx(async (c) => {
      const rows = await c.all('DELETE FROM registered_entries WHERE expires_at > 0 AND expires_at < ? RETURNING entry_id', [before]);
      await this.addEvents(
        c,
        rows.map((r) => str(r['entry_id'])),
        now,
      );
      return rows.length;
    });
  }

  async pruneEntryEvents(before: number): Promise<number> {
    this.checkOpen();
    checkInt(before, 'before');
    return this.driver.run('DELETE FROM entry_events WHERE created_at < ?', [before]);
  }

  /** Loads the authorised-entry index (one read of the entry table). */
  async warmUp(): Promise<void> {
    this.checkOpen();
    await this.index.refresh();
  }

  async listAuthorizedEntries(agentId: string, nodeSelectors: readonly Selector[]): Promise<readonly Entry[]> {
    this.checkOpen();
    checkSpiffeId(agentId, 'agentId');
    const sels = checkSelectors(nodeSelectors, 'nodeSelectors', true);
    return this.index.authorizedEntries(agentId, sels, async (seqs) => {
      const out: Entry[] = [];
      // Postgres: one array parameter; SQLite: chunked IN lists (no array type).
      const chunk = this.driver.dialect === 'postgres' ? Math.max(1, seqs.length) : IN_CHUNK;
      for (let i = 0; i < seqs.length; i += chunk) {
        const part = seqs.slice(i, i + chunk);
        const rows =
          this.driver.dialect === 'postgres'
            ? await this.driver.all(`SELECT ${ENTRY_COLS} FROM registered_entries e WHERE e.seq = ANY(?::bigint[])`, [part])
            : await this.driver.all(`SELECT ${ENTRY_COLS} FROM registered_entries e WHERE e.seq IN (${part.map(() => '?').join(', ')})`, part);
        for (const r of rows) out.push(rowToEntry(r));
      }
      return out;
    });
  }

  // ---- attested nodes ----

  private async nodeSelectorsFor(c: SqlConn, ids: readonly string[]): Promise<Map<string, Selector[]>> {
    const out = new Map<string, Selector[]>();
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      const rows = await c.all(
        `SELECT spiffe_id, type, value FROM node_selectors WHERE spiffe_id IN (${chunk.map(() => '?').join(', ')}) ` + 'ORDER BY spiffe_id, type, value',
        chunk,
      );
      for (const r of rows) {
        const id = str(r['spiffe_id']);
        let l = out.get(id);
        if (l === undefined) out.set(id, (l = []));
        l.push({ type: str(r['type']), value: str(r['value']) });
      }
    }
    return out;
  }

  private async readNode(c: SqlConn, spiffeId: string): Promise<AttestedNode | null> {
    const rows = await c.all(`SELECT ${NODE_COLS} FROM attested_nodes n WHERE n.spiffe_id = ?`, [spiffeId]);
    if (rows[0] === undefined) return null;
    const sels = await this.nodeSelectorsFor(c, [spiffeId]);
    return rowToNode(rows[0], sels.get(spiffeId) ?? []);
  }

  /** Drops a node from the cache around a write to it (before, and again once committed). */
  private async nodeWrite<T>(spiffeId: string, fn: () => Promise<T>): Promise<T> {
    this.nodeWrites++;
    this.nodeCache.delete(spiffeId);
    try {
      return await fn();
    } finally {
      this.nodeWrites++;
      this.nodeCache.delete(spiffeId);
    }
  }

  async createAttestedNode(node: NewAttestedNode): Promise<AttestedNode> {
    this.checkOpen();
    if (typeof node !== 'object' || node === null) throw invalidArgument('node must be an object');
    const id = checkSpiffeId(node.spiffeId, 'spiffeId');
    if (typeof node.attestationType !== 'string' || typeof node.serialNumber !== 'string') {
      throw invalidArgument('node attestation type and serial must be strings');
    }
    const expiresAt = checkInt(node.expiresAt, 'expiresAt');
    const newSerial = node.newSerialNumber ?? '';
    const newExpires = checkInt(node.newExpiresAt ?? 0, 'newExpiresAt');
    const now = this.now();
    return this.nodeWrite(id, () =>
      this.driver.tx(async (c) => {
        const n = await c.run(
          'INSERT INTO attested_nodes (spiffe_id, data_type, serial_number, expires_at, new_serial_number, new_expires_at, ' +
            'can_reattest, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (spiffe_id) DO NOTHING',
          [id, node.attestationType, node.serialNumber, expiresAt, newSerial, newExpires, b(node.canReattest ?? false), now, now],
        );
        if (n === 0) throw new ZtwimError('ERR_ALREADY_EXISTS', 'attested node already exists', { fields: { spiffeId: id } });
        const out = await this.readNode(c, id);
        if (out === null) throw new ZtwimError('ERR_DATASTORE', 'datastore: node vanished after insert');
        return out;
      }),
    );
  }

  async getAttestedNode(spiffeId: string): Promise<AttestedNode | null> {
    this.checkOpen();
    if (typeof spiffeId !== 'string') throw invalidArgument('node id must be a string');
    return this.readNode(this.driver, spiffeId);
  }

  async getCachedAttestedNode(spiffeId: string, maxAgeMs: number): Promise<AttestedNode | null> {
    this.checkOpen();
    const now = this.clock.nowMs();
    const hit = this.nodeCache.get(spiffeId);
    if (hit !== undefined && now >= hit.at && now - hit.at <= maxAgeMs) return hit.node;
    const writes = this.nodeWrites;
    const node = await this.getAttestedNode(spiffeId);
    // Not cached when a write to any node ran meanwhile (the row read may predate it).
    if (node !== null && writes === this.nodeWrites) {
      this.nodeCache.delete(spiffeId);
      this.nodeCache.set(spiffeId, { node, at: now });
      for (const k of this.nodeCache.keys()) {
        if (this.nodeCache.size <= MAX_CACHED_NODES) break;
        this.nodeCache.delete(k);
      }
    } else if (node === null) {
      this.nodeCache.delete(spiffeId);
    }
    return node;
  }

  async countAttestedNodes(filter?: AttestedNodeFilter): Promise<number> {
    this.checkOpen();
    const w = nodeWhere(filter);
    const rows = await this.driver.all(`SELECT COUNT(*) AS n FROM attested_nodes n${whereSql(w)}`, w.params);
    return num(rows[0]?.['n']);
  }

  async listAttestedNodes(filter?: AttestedNodeFilter, page?: Page): Promise<ListAttestedNodesResult> {
    this.checkOpen();
    const w = nodeWhere(filter);
    const p = pageArgs('n', page);
    const r = await this.pageQuery('attested_nodes', 'n', NODE_COLS, w, p);
    const sels = await this.nodeSelectorsFor(
      this.driver,
      r.rows.map((x) => str(x['spiffe_id'])),
    );
    return {
      nodes: r.rows.map((x) => rowToNode(x, sels.get(str(x['spiffe_id'])) ?? [])),
      nextPageToken: r.more ? encodePageToken('n', r.last) : '',
    };
  }

  async updateAttestedNode(spiffeId: string, update: AttestedNodeUpdate): Promise<AttestedNode> {
    this.checkOpen();
    if (typeof update !== 'object' || update === null) throw invalidArgument('node update must be an object');
    const sets: string[] = [];
    const params: SqlValue[] = [];
    const add = (col: string, v: SqlValue): void => {
      sets.push(`${col} = ?`);
      params.push(v);
    };
    if (update.attestationType !== undefined) add('data_type', str(update.attestationType));
    if (update.serialNumber !== undefined) add('serial_number', str(update.serialNumber));
    if (update.expiresAt !== undefined) add('expires_at', checkInt(update.expiresAt, 'expiresAt'));
    if (update.newSerialNumber !== undefined) add('new_serial_number', str(update.newSerialNumber));
    if (update.newExpiresAt !== undefined) add('new_expires_at', checkInt(update.newExpiresAt, 'newExpiresAt'));
    if (update.canReattest !== undefined) add('can_reattest', b(update.canReattest === true));
    add('updated_at', this.now());
    return this.nodeWrite(spiffeId, () =>
      this.driver.tx(async (c) => {
        const n = await c.run(`UPDATE attested_nodes SET ${sets.join(', ')} WHERE spiffe_id = ?`, [...params, spiffeId]);
        if (n === 0) throw notFound('agent not found', { fields: { spiffeId } });
        const out = await this.readNode(c, spiffeId);
        if (out === null) throw notFound('agent not found', { fields: { spiffeId } });
        return out;
      }),
    );
  }

  banAttestedNode(spiffeId: string): Promise<AttestedNode> {
    return this.updateAttestedNode(spiffeId, { serialNumber: '', newSerialNumber: '', newExpiresAt: 0 });
  }

  async deleteAttestedNode(spiffeId: string): Promise<AttestedNode> {
    this.checkOpen();
    return this.nodeWrite(spiffeId, () =>
      this.driver.tx(async (c) => {
        const node = await this.readNode(c, spiffeId);
        if (node === null) throw notFound('agent not found', { fields: { spiffeId } });
        await c.run('DELETE FROM attested_nodes WHERE spiffe_id = ?', [spiffeId]);
        await c.run('DELETE FROM node_selectors WHERE spiffe_id = ?', [spiffeId]);
        return node;
      }),
    );
  }

  async setNodeSelectors(spiffeId: string, selectors: readonly Selector[]): Promise<void> {
    this.checkOpen();
    checkSpiffeId(spiffeId, 'spiffeId');
    const sels = checkSelectors(selectors, 'selectors', true);
    await this.nodeWrite(spiffeId, () =>
      this.driver.tx(async (c) => {
        await c.run('DELETE FROM node_selectors WHERE spiffe_id = ?', [spiffeId]);
        for (let i = 0; i < sels.length; i += IN_CHUNK) {
          const chunk = sels.slice(i, i + IN_CHUNK);
          await c.run(
            `INSERT INTO node_selectors (spiffe_id, type, value) VALUES ${chunk.map(() => '(?, ?, ?)').join(', ')}`,
            chunk.flatMap((s) => [spiffeId, s.type, s.value]),
          );
        }
      }),
    );
  }

  async getNodeSelectors(spiffeId: string): Promise<Selector[]> {
    this.checkOpen();
    const m = await this.nodeSelectorsFor(this.driver, [spiffeId]);
    return m.get(spiffeId) ?? [];
  }

  // ---- join tokens ----

  async createJoinToken(token: JoinToken): Promise<void> {
    this.checkOpen();
    if (typeof token !== 'object' || token === null || typeof token.token !== 'string' || token.token === '') {
      throw invalidArgument('join token must be a non-empty string');
    }
    const n = await this.driver.run('INSERT INTO join_tokens (token, expires_at) VALUES (?, ?) ON CONFLICT (token) DO NOTHING', [
      token.token,
      checkInt(token.expiresAt, 'expiresAt'),
    ]);
    if (n === 0) throw new ZtwimError('ERR_ALREADY_EXISTS', 'join token already exists');
  }

  async takeJoinToken(token: string): Promise<JoinToken | null> {
    this.checkOpen();
    if (typeof token !== 'string') throw invalidArgument('join token must be a string');
    const rows = await this.driver.all('DELETE FROM join_tokens WHERE token = ? RETURNING token, expires_at', [token]);
    const r = rows[0];
    return r === undefined ? null : { token: str(r['token']), expiresAt: num(r['expires_at']) };
  }

  async pruneJoinTokens(before: number): Promise<number> {
    this.checkOpen();
    return this.driver.run('DELETE FROM join_tokens WHERE expires_at < ?', [checkInt(before, 'before')]);
  }

  // ---- bundles ----

  async getBundle(trustDomain: string): Promise<Bundle | null> {
    this.checkOpen();
    if (typeof trustDomain !== 'string') throw invalidArgument('trust domain must be a string');
    const rows = await this.driver.all('SELECT data, sequence_number FROM bundles WHERE trust_domain = ?', [normalizeTrustDomain(trustDomain)]);
    const r = rows[0];
    return r === undefined ? null : docToBundle(r['data'], r['sequence_number']);
  }

  private async writeBundle(c: SqlConn, td: string, next: BundleInput, prevSeq: bigint | null): Promise<Bundle> {
    const now = this.now();
    const seq = (prevSeq ?? 0n) + 1n;
    const data = bundleToDoc(next, td);
    if (prevSeq === null) {
      await c.run('INSERT INTO bundles (trust_domain, data, sequence_number, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', [
        td,
        data,
        seq.toString(),
        now,
        now,
      ]);
    } else {
      // Like SPIRE, an update that changes nothing keeps the sequence number.
      const cur = (await c.all('SELECT data FROM bundles WHERE trust_domain = ?', [td]))[0];
      if (cur !== undefined && String(cur['data']) === String(data)) return docToBundle(data, prevSeq.toString());
      await c.run('UPDATE bundles SET data = ?, sequence_number = ?, updated_at = ? WHERE trust_domain = ?', [data, seq.toString(), now, td]);
    }
    return docToBundle(data, seq.toString());
  }

  private async readBundle(c: SqlConn, td: string): Promise<Bundle | null> {
    await c.lock(`bundle:${td}`);
    const rows = await c.all('SELECT data, sequence_number FROM bundles WHERE trust_domain = ?', [td]);
    const r = rows[0];
    return r === undefined ? null : docToBundle(r['data'], r['sequence_number']);
  }

  async setBundle(bundle: BundleInput): Promise<Bundle> {
    this.checkOpen();
    const td = checkBundle(bundle);
    return this.driver.tx(async (c) => {
      const prev = await this.readBundle(c, td);
      return this.writeBundle(c, td, bundle, prev?.sequenceNumber ?? null);
    });
  }

  async appendBundle(bundle: BundleInput): Promise<Bundle> {
    this.checkOpen();
    const td = checkBundle(bundle);
    return this.driver.tx(async (c) => {
      const prev = await this.readBundle(c, td);
      if (prev === null) return this.writeBundle(c, td, bundle, null);
      const ders = new Set(prev.x509Authorities.map((a) => Buffer.from(a.asn1).toString('base64')));
      const kids = new Set(prev.jwtAuthorities.map((k) => k.keyId));
      const x509 = [...prev.x509Authorities];
      const jwt = [...prev.jwtAuthorities];
      for (const a of bundle.x509Authorities) {
        const k = Buffer.from(a.asn1).toString('base64');
        if (!ders.has(k)) {
          ders.add(k);
          x509.push(a);
        }
      }
      for (const k of bundle.jwtAuthorities) {
        if (!kids.has(k.keyId)) {
          kids.add(k.keyId);
          jwt.push(k);
        }
      }
      const refreshHint = bundle.refreshHint !== 0 ? bundle.refreshHint : prev.refreshHint;
      if (x509.length === prev.x509Authorities.length && jwt.length === prev.jwtAuthorities.length && refreshHint === prev.refreshHint) {
        return prev;
      }
      return this.writeBundle(c, td, { trustDomain: td, x509Authorities: x509, jwtAuthorities: jwt, refreshHint }, prev.sequenceNumber);
    });
  }

  async pruneBundle(trustDomain: string, before: number): Promise<boolean> {
    this.checkOpen();
    if (typeof trustDomain !== 'string' || !Number.isFinite(before)) throw invalidArgument('pruneBundle needs a trust domain and a time');
    const td = normalizeTrustDomain(trustDomain);
    return this.driver.tx(async (c) => {
      const prev = await this.readBundle(c, td);
      if (prev === null) return false;
      const x509 = prev.x509Authorities.filter((a) => certificateValidity(a.asn1).notAfter.getTime() > before);
      const jwt = prev.jwtAuthorities.filter((k) => k.expiresAt * 1000 > before);
      if (x509.length === prev.x509Authorities.length && jwt.length === prev.jwtAuthorities.length) return false;
      // As SPIRE: a prune that would leave no X.509 authority is refused (the bundle stays as it is).
      if (x509.length === 0) return false;
      await this.writeBundle(c, td, { trustDomain: td, x509Authorities: x509, jwtAuthorities: jwt, refreshHint: prev.refreshHint }, prev.sequenceNumber);
      return true;
    });
  }

  async listBundles(page?: Page): Promise<{ bundles: Bundle[]; nextPageToken: string }> {
    this.checkOpen();
    const p = pageArgs('b', page);
    const r = await this.pageQuery('bundles', 'b', 'b.seq, b.data, b.sequence_number', { clauses: [], params: [] }, p);
    return {
      bundles: r.rows.map((x) => docToBundle(x['data'], x['sequence_number'])),
      nextPageToken: r.more ? encodePageToken('b', r.last) : '',
    };
  }

  async deleteBundle(trustDomain: string, mode: BundleDeleteMode = 'restrict'): Promise<void> {
    this.checkOpen();
    if (typeof trustDomain !== 'string') throw invalidArgument('trust domain must be a string');
    if (!BUNDLE_DELETE_MODES.includes(mode)) throw invalidArgument(`unknown bundle delete mode ${JSON.stringify(mode)}`);
    const td = normalizeTrustDomain(trustDomain);
    const now = this.now();
    await this.driver.tx(async (c) => {
      await c.lock(`bundle:${td}`);
      const found = await c.all('SELECT trust_domain FROM bundles WHERE trust_domain = ?', [td]);
      if (found.length === 0) throw notFound('bundle not found', { fields: { trustDomain } });
      const users = await c.all(
        'SELECT e.seq, e.entry_id, e.federates_with FROM registered_entries e JOIN entry_federates f ON f.entry_seq = e.seq ' +
          'WHERE f.trust_domain = ? ORDER BY e.seq',
        [td],
      );
      if (users.length > 0) {
        if (mode === 'restrict') {
          throw failedPrecondition(`datastore-sql: cannot delete bundle; federated with ${users.length} registration entries`, {
            fields: { trustDomain: td, entries: users.length },
          });
        }
        const seqs = users.map((r) => num(r['seq']));
        for (let i = 0; i < seqs.length; i += IN_CHUNK) {
          const chunk = seqs.slice(i, i + IN_CHUNK);
          const marks = chunk.map(() => '?').join(', ');
          if (mode === 'delete') {
            await c.run(`DELETE FROM registered_entries WHERE seq IN (${marks})`, chunk);
          } else {
            await c.run(`DELETE FROM entry_federates WHERE trust_domain = ? AND entry_seq IN (${marks})`, [td, ...chunk]);
          }
        }
        if (mode === 'dissociate') {
          // The entry changed, so its revision moves on (agents re-fetch entries by revision).
          for (const r of users) {
            const kept = (JSON.parse(str(r['federates_with'])) as string[]).filter((f) => normalizeTrustDomain(f) !== td);
            await c.run('UPDATE registered_entries SET federates_with = ?, revision_number = revision_number + 1, updated_at = ? WHERE seq = ?', [
              JSON.stringify(kept),
              now,
              num(r['seq']),
            ]);
          }
        }
        await this.addEvents(
          c,
          users.map((r) => str(r['entry_id'])),
          now,
        );
      }
      await c.run('DELETE FROM bundles WHERE trust_domain = ?', [td]);
    });
  }

  async countBundles(): Promise<number> {
    this.checkOpen();
    const rows = await this.driver.all('SELECT COUNT(*) AS n FROM bundles');
    return num(rows[0]?.['n']);
  }

  // ---- federation relationships ----

  async createFederationRelationship(fr: NewFederationRelationship, trustDomainBundle?: BundleInput): Promise<FederationRelationship> {
    this.checkOpen();
    const v = checkRelationship(fr, {});
    const now = this.now();
    return this.driver.tx(async (c) => {
      if ((await c.all('SELECT 1 AS x FROM federation_relationships WHERE trust_domain = ?', [v.trustDomain])).length > 0) {
        // SPIRE's text for this case (its SQLite unique constraint), which its CLI prints.
        throw alreadyExists('datastore-sql: UNIQUE constraint failed: federated_trust_domains.trust_domain', { fields: { trustDomain: v.trustDomain } });
      }
      if (trustDomainBundle !== undefined) await this.replaceBundleIn(c, v.trustDomain, trustDomainBundle);
      await c.run(
        'INSERT INTO federation_relationships (trust_domain, bundle_endpoint_url, bundle_endpoint_profile, endpoint_spiffe_id, created_at, updated_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?)',
        [v.trustDomain, v.bundleEndpointUrl, v.bundleEndpointProfile, v.endpointSpiffeId, now, now],
      );
      return { ...v, createdAt: now };
    });
  }

  async getFederationRelationship(trustDomain: string): Promise<FederationRelationship | null> {
    this.checkOpen();
    if (typeof trustDomain !== 'string' || trustDomain === '') throw invalidArgument('trust domain is required');
    const rows = await this.driver.all(`SELECT ${REL_COLS} FROM federation_relationships f WHERE f.trust_domain = ?`, [normalizeTrustDomain(trustDomain)]);
    return rows[0] === undefined ? null : rowToRelationship(rows[0]);
  }

  async listFederationRelationships(page?: Page): Promise<{ relationships: FederationRelationship[]; nextPageToken: string }> {
    this.checkOpen();
    const p = pageArgs('f', page);
    const r = await this.pageQuery('federation_relationships', 'f', `f.seq, ${REL_COLS}`, { clauses: [], params: [] }, p);
    return { relationships: r.rows.map(rowToRelationship), nextPageToken: r.more ? encodePageToken('f', r.last) : '' };
  }

  async updateFederationRelationship(
    fr: NewFederationRelationship,
    mask: FederationRelationshipMask = { bundleEndpointUrl: true, bundleEndpointProfile: true },
    trustDomainBundle?: BundleInput,
  ): Promise<FederationRelationship> {
    this.checkOpen();
    const v = checkRelationship(fr, mask);
    const now = this.now();
    return this.driver.tx(async (c) => {
      const rows = await c.all(`SELECT ${REL_COLS} FROM federation_relationships f WHERE f.trust_domain = ?`, [v.trustDomain]);
      if (rows[0] === undefined) throw notFound('federation relationship not found', { fields: { trustDomain: v.trustDomain } });
      const cur = rowToRelationship(rows[0]);
      const next: FederationRelationship = {
        ...cur,
        ...(mask.bundleEndpointUrl === true ? { bundleEndpointUrl: v.bundleEndpointUrl } : {}),
        ...(mask.bundleEndpointProfile === true ? { bundleEndpointProfile: v.bundleEndpointProfile, endpointSpiffeId: v.endpointSpiffeId } : {}),
      };
      if (trustDomainBundle !== undefined) await this.replaceBundleIn(c, v.trustDomain, trustDomainBundle);
      await c.run(
        'UPDATE federation_relationships SET bundle_endpoint_url = ?, bundle_endpoint_profile = ?, endpoint_spiffe_id = ?, updated_at = ? WHERE trust_domain = ?',
        [next.bundleEndpointUrl, next.bundleEndpointProfile, next.endpointSpiffeId, now, v.trustDomain],
      );
      return next;
    });
  }

  async deleteFederationRelationship(trustDomain: string): Promise<void> {
    this.checkOpen();
    if (typeof trustDomain !== 'string' || trustDomain === '') throw invalidArgument('trust domain is required');
    const td = normalizeTrustDomain(trustDomain);
    const n = await this.driver.run('DELETE FROM federation_relationships WHERE trust_domain = ?', [td]);
    if (n === 0) throw notFound('federation relationship not found', { fields: { trustDomain: td } });
  }

  /** setBundle inside a caller's transaction (the relationship's trust_domain_bundle). */
  private async replaceBundleIn(c: SqlConn, td: string, bundle: BundleInput): Promise<Bundle> {
    if (checkBundle(bundle) !== td) {
      throw invalidArgument(`trust domain bundle ("${bundle.trustDomain}") must match the trust domain of the federation relationship ("${td}")`);
    }
    const prev = await this.readBundle(c, td);
    return this.writeBundle(c, td, bundle, prev?.sequenceNumber ?? null);
  }

  // ---- CA journal ----

  async getCaJournal(name: string): Promise<Uint8Array | null> {
    this.checkOpen();
    const rows = await this.driver.all('SELECT data FROM ca_journals WHERE name = ?', [name]);
    const d = rows[0]?.['data'];
    return d === undefined ? null : new Uint8Array(d as Uint8Array);
  }

  async setCaJournal(name: string, data: Uint8Array): Promise<void> {
    this.checkOpen();
    if (typeof name !== 'string' || name === '' || !(data instanceof Uint8Array)) {
      throw invalidArgument('ca journal needs a name and bytes');
    }
    await this.driver.run(
      'INSERT INTO ca_journals (name, data, updated_at) VALUES (?, ?, ?) ' +
        'ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at',
      [name, Buffer.from(data), this.now()],
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.nodeCache.clear();
    await this.driver.close();
  }
}
