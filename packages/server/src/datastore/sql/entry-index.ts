import { asError, silentLogger, type Clock, type Logger } from '@ztwim/core';
import type { Entry, Selector } from '../datastore.ts';
import type { Row, SqlDriver } from './driver.ts';
import { selectorKeyOf } from './filters.ts';

interface Indexed {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly seq: number;
  /** Selector keys; kept only for node-alias entries (parent `spiffe://<td>/spire/server`). */
  readonly aliasSelectors: readonly string[] | null;
}

/** How long an event id seen as a gap is re-checked (a Postgres transaction may commit late). */
const SKIPPED_EVENT_TIMEOUT_MS = 15 * 60_000;
/** Gaps larger than this are not tracked id by id (they come from pruning, not from in-flight writes). */
const MAX_TRACKED_GAP = 10_000;
const IN_CHUNK = 500;
/** How many recent authorised-entry answers are remembered (one per agent and node selector set). */
const MAX_ANSWERS = 1024;
/** On load, gaps among the newest RECENT_WINDOW event ids are treated as in-flight writes. */
const RECENT_WINDOW = 100;

/** `spiffe://td/path` → [td, path]. */
function splitId(id: string): [string, string] {
  const rest = id.slice('spiffe://'.length);
  const i = rest.indexOf('/');
  return i < 0 ? [rest, ''] : [rest.slice(0, i), rest.slice(i)];
}

/**
 * In-memory structure of the registration entries (id, spiffeId, parentId, alias selectors) used
 * to resolve SPIRE §2.5 authorised entries without per-level queries. It is built once from the
 * table, then kept current by replaying entry_events rows newer than the last one seen (SPIRE's
 * events-based cache): each refresh costs one indexed query. Event ids that are skipped (a
 * Postgres sequence value whose transaction has not committed yet) are re-checked until they
 * appear or time out.
 */
export class AuthorizedEntryIndex {
  private readonly driver: SqlDriver;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Indexed>();
  /** row seq → entry id. */
  private readonly bySeq = new Map<number, string>();
  private readonly children = new Map<string, Set<string>>();
  /** trust domain → alias entry ids. */
  private readonly aliases = new Map<string, Set<string>>();
  private readonly skipped = new Map<number, number>();
  /**
   * Full entries already read for an authorised-entries answer, by entry id; an entry leaves
   * when an event names it (and on reload), so repeated lookups by the same agents cost no
   * query. Filled only inside the serialised chain (see authorizedEntries), never with a row
   * older than the last replayed event.
   */
  private readonly full = new Map<string, Entry>();
  /** Bumped on every change to the index; answers computed at an older generation are stale. */
  private generation = 0;
  /** Recent complete answers, by agent id and node selectors. */
  private readonly answers = new Map<string, { generation: number; entries: readonly Entry[] }>();
  private lastEventId = 0;
  private loaded = false;
  private chain: Promise<void> = Promise.resolve();
  /** SQLite commits in event-id order (one writer); Postgres sequences may commit out of order. */
  private readonly trackGaps: boolean;

  /** Where the full load reads (a read replica: ro_connection_string), or the primary. */
  private readonly loadFrom: SqlDriver;
  private readonly logger: Logger;

  constructor(driver: SqlDriver, clock: Clock, staleReads?: SqlDriver, logger?: Logger) {
    this.driver = driver;
    this.clock = clock;
    this.loadFrom = staleReads ?? driver;
    this.logger = logger ?? silentLogger();
    this.trackGaps = driver.dialect === 'postgres';
  }

  /** Brings the index up to date with every committed change; calls are serialised. */
  refresh(): Promise<void> {
    return this.serialised(() => this.catchUp());
  }

  private async catchUp(): Promise<void> {
    if (!this.loaded) {
      await this.load();
      // Read on the primary, the load is current; read on a replica, it may lag: the primary's
      // newer events are replayed at once.
      if (this.loadFrom === this.driver) return;
    }
    await this.replay();
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /**
   * The authorised entries of `agentId` (see `authorized`), in creation order. Catches up with
   * the event log first; entries not cached yet are read with `fetch` (by row seq; rows deleted
   * meanwhile are absent) in the same serialised step, so no replay can run between the read and
   * the caching: a change committed after the read has a newer event, which evicts the entry.
   */
  authorizedEntries(agentId: string, nodeSelectors: readonly Selector[], fetch: (seqs: readonly number[]) => Promise<Entry[]>): Promise<readonly Entry[]> {
    return this.serialised(async () => {
      await this.catchUp();
      // Same agent, same node selectors, nothing changed since: the same answer.
      const key = `${agentId}\n${nodeSelectors
        .map((s) => selectorKeyOf(s.type, s.value))
        .sort()
        .join('\n')}`;
      const hit = this.answers.get(key);
      if (hit !== undefined && hit.generation === this.generation) return hit.entries;
      const seqs = this.authorized(agentId, nodeSelectors);
      const ids: string[] = [];
      const missing: number[] = [];
      for (const seq of seqs) {
        const id = this.bySeq.get(seq);
        if (id === undefined) continue;
        ids.push(id);
        if (!this.full.has(id)) missing.push(seq);
      }
      if (missing.length > 0) {
        for (const e of await fetch(missing)) {
          // Only rows the index still knows under that id (not deleted or replaced meanwhile).
          if (this.entries.has(e.id)) this.full.set(e.id, e);
        }
      }
      const out: Entry[] = [];
      for (const id of ids) {
        const e = this.full.get(id);
        if (e !== undefined) out.push(e);
      }
      Object.freeze(out);
      if (out.length === ids.length) {
        this.answers.delete(key);
        this.answers.set(key, { generation: this.generation, entries: out });
        // Bounded: the oldest answers go first.
        for (const k of this.answers.keys()) {
          if (this.answers.size <= MAX_ANSWERS) break;
          this.answers.delete(k);
        }
      }
      return out;
    });
  }

  private add(e: Indexed): void {
    this.generation++;
    this.entries.set(e.id, e);
    this.bySeq.set(e.seq, e.id);
    let s = this.children.get(e.parentId);
    if (s === undefined) this.children.set(e.parentId, (s = new Set()));
    s.add(e.id);
    if (e.aliasSelectors !== null) {
      const td = splitId(e.parentId)[0];
      let a = this.aliases.get(td);
      if (a === undefined) this.aliases.set(td, (a = new Set()));
      a.add(e.id);
    }
  }

  private remove(id: string): void {
    const e = this.entries.get(id);
    this.generation++;
    this.full.delete(id);
    if (e === undefined) return;
    this.entries.delete(id);
    if (this.bySeq.get(e.seq) === id) this.bySeq.delete(e.seq);
    const s = this.children.get(e.parentId);
    s?.delete(id);
    if (s?.size === 0) this.children.delete(e.parentId);
    if (e.aliasSelectors !== null) {
      const td = splitId(e.parentId)[0];
      const a = this.aliases.get(td);
      a?.delete(id);
      if (a?.size === 0) this.aliases.delete(td);
    }
  }

  private static fromRow(r: Record<string, unknown>): Indexed {
    const parentId = String(r['parent_id']);
    const isAlias = splitId(parentId)[1] === '/spire/server';
    const sels = isAlias ? (JSON.parse(String(r['selectors'])) as Selector[]) : null;
    return {
      id: String(r['entry_id']),
      spiffeId: String(r['spiffe_id']),
      parentId,
      seq: Number(r['seq']),
      aliasSelectors: sels === null ? null : sels.map((s) => selectorKeyOf(s.type, s.value)),
    };
  }

  private static readonly COLS = "seq, entry_id, spiffe_id, parent_id, CASE WHEN parent_id LIKE '%/spire/server' THEN selectors ELSE NULL END AS selectors";

  /**
   * The event log's last id, then the entries: every change after that id is replayed from the
   * primary, so the rows may be read from a replica that lags (they are at least as new as the
   * event id read before them on the same server). As SPIRE's entry cache with TolerateStale.
   */
  private static async snapshot(from: SqlDriver): Promise<{ max: number; recent: Row[]; rows: Row[] }> {
    const m = await from.all('SELECT COALESCE(MAX(event_id), 0) AS m FROM entry_events');
    const max = Number(m[0]?.['m'] ?? 0);
    // Ids just below the max that are missing may belong to transactions still in flight.
    const recent = await from.all('SELECT event_id FROM entry_events WHERE event_id > ?', [Math.max(0, max - RECENT_WINDOW)]);
    const rows = await from.all(`SELECT ${AuthorizedEntryIndex.COLS} FROM registered_entries`);
    return { max, recent, rows };
  }

  private async load(): Promise<void> {
    let snap: { max: number; recent: Row[]; rows: Row[] };
    try {
      snap = await AuthorizedEntryIndex.snapshot(this.loadFrom);
    } catch (e) {
      if (this.loadFrom === this.driver) throw e;
      // The replica is away: the primary answers instead.
      this.logger.warn({ error: asError(e).message }, 'datastore: Read replica unavailable; reading the entries from the primary');
      snap = await AuthorizedEntryIndex.snapshot(this.driver);
    }
    const { max, recent, rows } = snap;
    this.generation++;
    this.entries.clear();
    this.bySeq.clear();
    this.full.clear();
    this.answers.clear();
    this.children.clear();
    this.aliases.clear();
    for (const r of rows) this.add(AuthorizedEntryIndex.fromRow(r));
    if (this.trackGaps) {
      const present = new Set(recent.map((r) => Number(r['event_id'])));
      const now = this.clock.nowMs();
      for (let id = Math.max(1, max - RECENT_WINDOW + 1); id < max; id++) if (!present.has(id)) this.skipped.set(id, now);
    }
    this.lastEventId = max;
    this.loaded = true;
  }

  private async replay(): Promise<void> {
    const now = this.clock.nowMs();
    for (const [id, at] of this.skipped) if (now - at > SKIPPED_EVENT_TIMEOUT_MS) this.skipped.delete(id);
    const skippedIds = [...this.skipped.keys()].slice(0, IN_CHUNK);
    const rows = await this.driver.all(
      'SELECT event_id, entry_id FROM entry_events WHERE event_id > ?' +
        (skippedIds.length > 0 ? ` OR event_id IN (${skippedIds.map(() => '?').join(', ')})` : '') +
        ' ORDER BY event_id',
      [this.lastEventId, ...skippedIds],
    );
    if (rows.length === 0) return;
    const changed = new Set<string>();
    let last = this.lastEventId;
    for (const r of rows) {
      const id = Number(r['event_id']);
      changed.add(String(r['entry_id']));
      if (this.skipped.delete(id)) continue;
      if (this.trackGaps && id > last + 1 && id - last - 1 <= MAX_TRACKED_GAP) {
        for (let g = last + 1; g < id; g++) this.skipped.set(g, now);
      }
      if (id > last) last = id;
    }
    const ids = [...changed];
    const found = new Map<string, Indexed>();
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      const cur = await this.driver.all(
        `SELECT ${AuthorizedEntryIndex.COLS} FROM registered_entries WHERE entry_id IN (${chunk.map(() => '?').join(', ')})`,
        chunk,
      );
      for (const r of cur) {
        const e = AuthorizedEntryIndex.fromRow(r);
        found.set(e.id, e);
      }
    }
    for (const id of ids) {
      this.remove(id);
      const e = found.get(id);
      if (e !== undefined) this.add(e);
    }
    this.lastEventId = last;
  }

  /**
   * Entry ids authorised for agentId: entries parented by it and, recursively, by any found
   * entry's SPIFFE ID (cycle-safe), plus the descendants of node-alias entries whose selector set
   * is a subset of nodeSelectors (the alias itself excluded). Only IDs in the agent's trust domain.
   * Returns row seqs in creation order.
   */
  authorized(agentId: string, nodeSelectors: readonly Selector[]): number[] {
    const [td] = splitId(agentId);
    const nodeSet = new Set(nodeSelectors.map((s) => selectorKeyOf(s.type, s.value)));
    const seen = new Set<string>([agentId]);
    const queue: string[] = [agentId];
    for (const aliasId of this.aliases.get(td) ?? []) {
      const a = this.entries.get(aliasId);
      if (a === undefined || a.aliasSelectors === null || a.aliasSelectors.length === 0) continue;
      if (splitId(a.spiffeId)[0] !== td || !a.aliasSelectors.every((k) => nodeSet.has(k))) continue;
      if (!seen.has(a.spiffeId)) {
        seen.add(a.spiffeId);
        queue.push(a.spiffeId);
      }
    }
    const out: number[] = [];
    const taken = new Set<string>();
    for (let i = 0; i < queue.length; i++) {
      const sid = queue[i] as string;
      for (const id of this.children.get(sid) ?? []) {
        const e = this.entries.get(id);
        if (e === undefined || taken.has(id) || splitId(e.spiffeId)[0] !== td) continue;
        taken.add(id);
        out.push(e.seq);
        if (!seen.has(e.spiffeId)) {
          seen.add(e.spiffeId);
          queue.push(e.spiffeId);
        }
      }
    }
    return out.sort((a, b) => a - b);
  }
}
