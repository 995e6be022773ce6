// Sync loop + cache: authorized entries, bundle, workload X509-SVIDs, JWT-SVIDs.
import { certificateValidity } from '@ztwim/spiffe';
import type { Clock, Logger } from '@ztwim/core';
import { ZtwimError, wireSpiffeIdString } from '@ztwim/core';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Bundle, Entry } from '@ztwim/proto';
import { streamCallOptions, type ServerClient } from '../client/server-client.ts';
import { newKeyAndCsr, newKeyAndCsrSync } from '../client/csr.ts';
import type { Selector } from '../attestation/workload/workload-attestor.ts';

export interface CachedX509Svid {
  readonly entryId: string;
  readonly spiffeId: string;
  readonly chain: readonly Uint8Array[];
  readonly keyDer: Uint8Array;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly revision: bigint;
  /** Rotation due time (jittered half-life). */
  readonly rotateAt: number;
}

interface CachedJwt { readonly token: string; readonly issuedAt: number; readonly expiresAt: number }

export function entrySpiffeId(e: Entry): string {
  return wireSpiffeIdString(e.spiffeId);
}

/** An entry applies when every one of its selectors is among the workload's selectors. */
export function entryMatches(e: Entry, workload: readonly Selector[]): boolean {
  const have = new Set(workload.map((s) => `${s.type}:${s.value}`));
  return e.selectors.length > 0 && e.selectors.every((s) => have.has(`${s.type}:${s.value}`));
}

/** JWT-SVIDs the agent keeps cached (least recently used dropped first); SPIRE's default size. */
export const JWT_CACHE_MAX = 1000;

/** Half-life rotation time with up to 10% negative jitter. */
export function rotationTime(issuedAt: number, expiresAt: number, jitter: number): number {
  const half = (expiresAt - issuedAt) / 2;
  return issuedAt + half - half * 0.1 * jitter;
}

/** Largest BatchNewX509SVID request: SPIRE's server signs at most 500 CSRs per agent per second (limits.SignLimitPerIP) and ztwim's server takes 500 per call. */
export const MINT_BATCH = 500;
/** Mint batches in flight at once: the next batch's keys are made while the server signs one. */
export const MINT_PIPELINE = 2;
/** Largest batch of entries that waiting workloads need, sent ahead of the others. */
export const PRIORITY_BATCH = 50;

/**
 * What the Workload API may answer for a workload right now:
 * - `syncing`: the agent has not yet learnt its entries since it started (or, during that first
 *   sync, has not yet minted the workload's SVIDs): answer Unavailable, never PermissionDenied;
 * - `ready`: the cache is complete for this workload (no entries then means no identity).
 */
export type Readiness = 'ready' | 'syncing';

/** What a Workload API method needs from the cache: entries only (JWT), or their X509-SVIDs too. */
export type ReadinessNeed = 'entries' | 'svids';

export interface CacheManagerOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly syncIntervalMs: number;
  readonly client: () => ServerClient;
  readonly jitter?: () => number;
}

export class CacheManager {
  readonly #o: CacheManagerOptions;
  #entries = new Map<string, Entry>();
  #bySelector = new Map<string, Entry[]>();
  #svids = new Map<string, CachedX509Svid>();
  #jwts = new Map<string, CachedJwt>();
  /** NewJWTSVID calls under way, by cache key: concurrent misses for one token share one call. */
  readonly #jwtsInFlight = new Map<string, Promise<string>>();
  #bundle: Bundle | undefined;
  #federated = new Map<string, Bundle>();
  readonly #listeners = new Set<() => void>();
  #failures = 0;
  /** The full entry list and the bundle have been fetched since start. */
  #entriesKnown = false;
  /** The first sync since start has completed: every entry's SVID minted (or refused). */
  #synced = false;
  readonly #startedAt: number;
  /** Entries whose SVIDs a waiting workload needs, minted first during the first sync. */
  readonly #priority = new Set<string>();
  /** Woken when readiness may have changed (entries learnt, SVIDs minted, first sync done). */
  readonly #waiters = new Set<() => void>();
  /** The mint run in progress: its due entries and how to send a batch of them. */
  #run: { readonly due: Map<string, Entry>; readonly launch: (batch: Entry[], inline: boolean) => void } | undefined;

  constructor(o: CacheManagerOptions) {
    this.#o = o;
    this.#startedAt = o.clock.nowMs();
  }

  get bundle(): Bundle | undefined { return this.#bundle; }
  get federated(): ReadonlyMap<string, Bundle> { return this.#federated; }
  get entries(): ReadonlyMap<string, Entry> { return this.#entries; }
  /** The first sync since start has completed (entries fetched, their SVIDs minted). */
  get synced(): boolean { return this.#synced; }
  /** The full entry list has been fetched since start. */
  get entriesKnown(): boolean { return this.#entriesKnown; }

  /**
   * Whether the cache can answer for a workload with these selectors. Until the entries are known
   * nothing can be said; during the first sync a workload whose matching entries are not all
   * minted yet waits for them (and they are minted next), as SPIRE's agent holds a subscriber
   * until its SVIDs are cached.
   */
  readiness(selectors: readonly Selector[], need: ReadinessNeed): Readiness {
    if (!this.#entriesKnown) return 'syncing';
    if (need === 'entries' || this.#synced) return 'ready';
    let added = false;
    let missing = false;
    for (const i of this.identitiesFor(selectors)) {
      if (i.svid !== undefined) continue;
      missing = true;
      if (!this.#priority.has(i.entry.id)) { this.#priority.add(i.entry.id); added = true; }
    }
    if (added) this.#kickPriority();
    return missing ? 'syncing' : 'ready';
  }

  /**
   * Resolves true as soon as readiness() is `ready`, false after `maxWaitMs` (clock time) or when
   * `signal` aborts.
   */
  async waitReady(selectors: readonly Selector[], need: ReadinessNeed, maxWaitMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.readiness(selectors, need) === 'ready') return true;
    if (signal?.aborted === true) return false;
    return await new Promise<boolean>((resolve) => {
      const finish = (ok: boolean): void => {
        cancel();
        this.#waiters.delete(check);
        signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const check = (): void => { if (this.readiness(selectors, need) === 'ready') finish(true); };
      const onAbort = (): void => finish(false);
      const cancel = this.#o.clock.setTimer(maxWaitMs, () => finish(false));
      this.#waiters.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #wakeWaiters(): void { for (const w of [...this.#waiters]) w(); }

  setBundle(b: Bundle): void { this.#bundle = b; }

  subscribe(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => { this.#listeners.delete(fn); };
  }

  #notify(): void { for (const l of [...this.#listeners]) l(); }

  /**
   * Entries (with SVIDs) matching the workload's selectors. Only entries indexed under one of
   * the workload's selectors are looked at (see #setEntries), so a call costs the same with
   * 10 or 100,000 entries on the agent.
   */
  identitiesFor(selectors: readonly Selector[]): { entry: Entry; svid: CachedX509Svid | undefined }[] {
    const have = new Set(selectors.map((s) => `${s.type}:${s.value}`));
    const out: { entry: Entry; svid: CachedX509Svid | undefined }[] = [];
    for (const k of have) {
      for (const e of this.#bySelector.get(k) ?? []) {
        if (e.selectors.every((s) => have.has(`${s.type}:${s.value}`))) out.push({ entry: e, svid: this.#svids.get(e.id) });
      }
    }
    return out.sort((a, b) => (a.entry.id < b.entry.id ? -1 : a.entry.id > b.entry.id ? 1 : 0));
  }

  /** Replaces the entries and indexes each under its first selector (an entry matches only if all of its selectors do). */
  #setEntries(next: Map<string, Entry>): void {
    this.#entries = next;
    const idx = new Map<string, Entry[]>();
    for (const e of next.values()) {
      const first = e.selectors[0];
      if (first === undefined) continue; // no selectors: matches nothing (entryMatches)
      const k = `${first.type}:${first.value}`;
      const list = idx.get(k);
      if (list === undefined) idx.set(k, [e]);
      else list.push(e);
    }
    this.#bySelector = idx;
  }

  /** Next delay: sync interval, or backoff after failures (max min(8 min, 48×interval)). */
  nextDelayMs(): number {
    const base = this.#o.syncIntervalMs;
    if (this.#failures === 0) return base;
    const cap = Math.min(8 * 60_000, 48 * base);
    return Math.min(cap, base * 2 ** Math.min(this.#failures - 1, 10));
  }

  /**
   * One sync pass. Never throws for server unavailability; returns false on failure. `signal`
   * (the agent stopping) stops minting between batches, so a stop does not wait for thousands of
   * SVIDs.
   */
  async sync(signal?: AbortSignal): Promise<boolean> {
    try {
      await this.#syncOnce(signal);
      this.#failures = 0;
      if (!this.#synced) {
        this.#synced = true;
        this.#priority.clear();
        this.#o.logger.info({ entries: this.#entries.size, svids: this.#svids.size, duration_ms: this.#o.clock.nowMs() - this.#startedAt }, 'first sync complete');
        this.#wakeWaiters();
      }
      return true;
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.PermissionDenied) throw e;
      if (signal?.aborted === true) return false;
      this.#failures++;
      this.#o.logger.warn({ err: e, failures: this.#failures }, 'sync failed; serving cached svids');
      return false;
    }
  }

  async #fetchEntries(c: ServerClient): Promise<Entry[]> {
    try {
      return await this.#syncAuthorized(c);
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.Unimplemented) {
        const res = await c.entry.getAuthorizedEntries({});
        return res.entries;
      }
      throw e;
    }
  }

  /** SyncAuthorizedEntries: full list when small, else revisions then fetch changed ids. */
  async #syncAuthorized(c: ServerClient): Promise<Entry[]> {
    const ac = new AbortController();
    const pending: { ids: string[] }[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    async function* reqs(): AsyncGenerator<{ ids: string[] }> {
      yield { ids: [] };
      for (;;) {
        const n = pending.shift();
        if (n !== undefined) { yield n; continue; }
        if (done) return;
        await new Promise<void>((r) => { wake = r; });
      }
    }
    const result: Entry[] = [];
    const revisions: { id: string; revisionNumber: bigint }[] = [];
    let stage: 'initial' | 'entries' = 'initial';
    let need = 0;
    let got = 0;
    try {
      for await (const res of c.entry.syncAuthorizedEntries(reqs(), streamCallOptions(ac))) {
        if (stage === 'initial') {
          result.push(...res.entries);
          revisions.push(...res.entryRevisions);
          if (res.more) continue;
          if (revisions.length === 0) break;
          const toFetch: string[] = [];
          for (const r of revisions) {
            const have = this.#entries.get(r.id);
            if (have !== undefined && have.revisionNumber === r.revisionNumber) result.push(have);
            else toFetch.push(r.id);
          }
          if (toFetch.length === 0) break;
          stage = 'entries';
          need = toFetch.length;
          for (let i = 0; i < toFetch.length; i += 500) pending.push({ ids: toFetch.slice(i, i + 500) });
          wake?.();
        } else {
          result.push(...res.entries);
          got += res.entries.length;
          if (!res.more && got >= need) break;
        }
      }
    } finally {
      done = true;
      wake?.();
      ac.abort();
    }
    return result;
  }

  async #syncOnce(signal: AbortSignal | undefined): Promise<void> {
    const c = this.#o.client();
    const entries = await this.#fetchEntries(c);
    let changed = false;
    const bundle = await c.bundle.getBundle({});
    if (this.#bundle === undefined || !bundlesEqual(this.#bundle, bundle)) { this.#bundle = bundle; changed = true; }
    const next = new Map(entries.map((e) => [e.id, e] as const));
    for (const id of this.#entries.keys()) {
      if (!next.has(id)) { this.#svids.delete(id); changed = true; }
    }
    for (const [id, e] of next) {
      const prev = this.#entries.get(id);
      if (prev === undefined || prev.revisionNumber !== e.revisionNumber) changed = true;
    }
    this.#setEntries(next);
    // Federated bundles named by entries.
    const tds = new Set<string>();
    for (const e of entries) for (const f of e.federatesWith) tds.add(f);
    const fed = new Map<string, Bundle>();
    for (const td of tds) {
      try {
        fed.set(td, await c.bundle.getFederatedBundle({ trustDomain: td }));
      } catch (e) {
        const old = this.#federated.get(td);
        if (old !== undefined) fed.set(td, old);
        this.#o.logger.warn({ err: e, trustDomain: td }, 'cannot fetch federated bundle');
      }
    }
    if (fed.size !== this.#federated.size || [...fed].some(([k, v]) => { const o = this.#federated.get(k); return o === undefined || !bundlesEqual(o, v); })) changed = true;
    this.#federated = fed;
    if (!this.#entriesKnown) {
      this.#entriesKnown = true;
      this.#o.logger.info({ entries: next.size, duration_ms: this.#o.clock.nowMs() - this.#startedAt }, 'first sync: entries fetched');
      this.#wakeWaiters();
    }
    // SVIDs to (re)issue.
    const now = this.#o.clock.nowMs();
    const due = new Map<string, Entry>();
    for (const e of next.values()) {
      const s = this.#svids.get(e.id);
      if (s === undefined || s.revision !== e.revisionNumber || now >= s.rotateAt) due.set(e.id, e);
    }
    if (await this.#mint(c, due, now, signal)) changed = true;
    if (changed) this.#notify();
  }

  /** Takes the next MINT_BATCH due entries, in entry order. */
  #takeBatch(due: Map<string, Entry>): Entry[] {
    const batch: Entry[] = [];
    for (const [id, e] of due) {
      if (batch.length >= MINT_BATCH) break;
      batch.push(e);
      due.delete(id);
    }
    return batch;
  }

  /**
   * During a mint run, sends the due entries a waiting workload needs in a batch of their own
   * right away, their keys made on the event loop (a few keys: milliseconds) rather than queued on
   * the thread pool behind the batches in flight: the workload is served after one round trip to
   * the server instead of after the batches ahead of it.
   */
  #kickPriority(): void {
    const run = this.#run;
    if (run === undefined || this.#priority.size === 0) return;
    const batch: Entry[] = [];
    for (const id of this.#priority) {
      if (batch.length >= PRIORITY_BATCH) break;
      const e = run.due.get(id);
      if (e !== undefined) { batch.push(e); run.due.delete(id); }
    }
    if (batch.length > 0) run.launch(batch, true);
  }

  /**
   * Mints the due entries' SVIDs in batches of MINT_BATCH, MINT_PIPELINE batches in flight (keys
   * and CSRs are made on the thread pool, see newKeyAndCsr), plus the entries waiting workloads
   * need at once (#kickPriority). Each batch is cached as it lands and wakes waiting workloads; the
   * first failure stops new batches and is thrown once the batches in flight have landed. Returns
   * whether any SVID changed.
   */
  async #mint(c: ServerClient, due: Map<string, Entry>, now: number, signal: AbortSignal | undefined): Promise<boolean> {
    let changed = false;
    let failure: { e: unknown } | undefined;
    const onAbort = (): void => { failure ??= { e: signal?.reason } };
    if (signal?.aborted === true) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const inflight = new Set<Promise<void>>();
    let pipelined = 0;
    const launch = (batch: Entry[], inline: boolean): void => {
      if (failure !== undefined) return;
      if (!inline) pipelined++;
      const p: Promise<void> = this.#mintBatch(c, batch, now, inline).then(
        (n) => {
          if (n > 0) { changed = true; this.#wakeWaiters(); }
        },
        (e: unknown) => { failure ??= { e }; },
      ).finally(() => {
        inflight.delete(p);
        if (!inline) pipelined--;
      });
      inflight.add(p);
    };
    this.#run = { due, launch };
    try {
      this.#kickPriority();
      while ((due.size > 0 && failure === undefined) || inflight.size > 0) {
        while (due.size > 0 && failure === undefined && pipelined < MINT_PIPELINE) launch(this.#takeBatch(due), false);
        await Promise.race(inflight);
      }
    } finally {
      this.#run = undefined;
      signal?.removeEventListener('abort', onAbort);
    }
    if (failure !== undefined) {
      if (changed) this.#notify(); // what did land is served
      throw failure.e;
    }
    return changed;
  }

  /** One BatchNewX509SVID call (keys made `inline` on the event loop or on the thread pool); returns how many SVIDs it cached. */
  async #mintBatch(c: ServerClient, batch: readonly Entry[], now: number, inline: boolean): Promise<number> {
    const t0 = this.#o.clock.nowMs();
    const reqs = inline ? batch.map(() => newKeyAndCsrSync()) : await Promise.all(batch.map(() => newKeyAndCsr()));
    const t1 = this.#o.clock.nowMs();
    const res = await c.svid.batchNewX509SVID({ params: batch.map((e, j) => ({ entryId: e.id, csr: reqs[j]!.csr })) });
    this.#o.logger.debug({ size: batch.length, inline, keys_ms: t1 - t0, server_ms: this.#o.clock.nowMs() - t1 }, 'minted svid batch');
    let n = 0;
    res.results.forEach((r, j) => {
      const e = batch[j];
      const k = reqs[j];
      if (e === undefined || k === undefined) return;
      if (r.svid === undefined || (r.status !== undefined && r.status.code !== 0)) {
        this.#o.logger.warn({ entryId: e.id, status: r.status?.message }, 'cannot issue workload svid');
        return;
      }
      if (this.#entries.get(e.id) !== e) return; // replaced or removed meanwhile
      const issuedAt = notBeforeMs(r.svid.certChain[0], now);
      const expiresAt = Number(r.svid.expiresAt) * 1000;
      this.#svids.set(e.id, {
        entryId: e.id,
        spiffeId: entrySpiffeId(e),
        chain: r.svid.certChain,
        keyDer: k.keyDer,
        issuedAt,
        expiresAt,
        revision: e.revisionNumber,
        rotateAt: rotationTime(Math.min(issuedAt, now), expiresAt, (this.#o.jitter ?? Math.random)()),
      });
      n++;
    });
    return n;
  }

  /**
   * JWT-SVID for (entry, audience set), cached until half-life. The cache keeps the
   * JWT_CACHE_MAX most recently used tokens (SPIRE's `jwt_svid_cache_max_size` default), so a
   * workload asking for ever new audiences costs neither unbounded memory nor a scan per call.
   */
  async jwtSvid(entry: Entry, audience: readonly string[]): Promise<string> {
    const aud = [...new Set(audience)].sort();
    const key = `${entry.id}\u0000${aud.join('\u0000')}`;
    const now = this.#o.clock.nowMs();
    const hit = this.#jwts.get(key);
    if (hit !== undefined && now < hit.issuedAt + (hit.expiresAt - hit.issuedAt) / 2) {
      this.#jwts.delete(key); // most recently used goes last
      this.#jwts.set(key, hit);
      return hit.token;
    }
    // Workloads starting together ask for the same token at once: one server call for all of
    // them (200 JWT clients of a burst made 200 NewJWTSVID calls for one token before).
    const flying = this.#jwtsInFlight.get(key);
    if (flying !== undefined) return flying;
    const p = this.#mintJwt(entry, audience, key, now);
    this.#jwtsInFlight.set(key, p);
    try {
      return await p;
    } finally {
      this.#jwtsInFlight.delete(key);
    }
  }

  async #mintJwt(entry: Entry, audience: readonly string[], key: string, now: number): Promise<string> {
    const res = await this.#o.client().svid.newJWTSVID({ entryId: entry.id, audience: [...audience] });
    const svid = res.svid;
    if (svid === undefined) throw new ZtwimError('ERR_INTERNAL', 'server returned no jwt-svid');
    this.#jwts.delete(key);
    this.#jwts.set(key, { token: svid.token, issuedAt: Number(svid.issuedAt) * 1000 || now, expiresAt: Number(svid.expiresAt) * 1000 });
    for (const k of this.#jwts.keys()) {
      if (this.#jwts.size <= JWT_CACHE_MAX) break;
      this.#jwts.delete(k);
    }
    return svid.token;
  }
}

/** The leaf's notBefore (a short DER read, see certificateValidity), or `fallback` if unreadable. */
function notBeforeMs(leaf: Uint8Array | undefined, fallback: number): number {
  if (leaf === undefined) return fallback;
  try {
    return certificateValidity(leaf).notBefore.getTime();
  } catch {
    return fallback;
  }
}

function bundlesEqual(a: Bundle, b: Bundle): boolean {
  const x = (bb: Bundle): string => JSON.stringify({
    x: bb.x509Authorities.map((c) => Buffer.from(c.asn1).toString('base64')),
    j: bb.jwtAuthorities.map((k) => [k.keyId, Buffer.from(k.publicKey).toString('base64'), String(k.expiresAt)]),
  });
  return x(a) === x(b);
}
