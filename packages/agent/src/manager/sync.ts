// The agent's sync with the server (SPIRE pkg/agent/manager): authorised entries fetched with
// SyncAuthorizedEntries, the bundle and federated bundles, workload X509-SVIDs minted in batches;
// the results go into the cache (cache.ts), JWT-SVIDs into the JWT cache (jwt-cache.ts).
import { certificateValidity } from '@ztwim/spiffe';
import type { Clock, Logger } from '@ztwim/core';
import { isZtwimError, ZtwimError } from '@ztwim/core';
import type { Bundle, Entry } from '@ztwim/proto';
import { streamCallOptions, type ServerClient } from '../client/server-client.ts';
import type { ServerCalls } from '../client/server-pool.ts';
import { newKeyAndCsr, newKeyAndCsrSync } from '../client/csr.ts';
import { RequestQueue } from '../client/request-queue.ts';
import type { Selector } from '../attestation/workload/workload-attestor.ts';
import { EntryCache, entrySpiffeId, type CachedX509Svid } from './cache.ts';
import { JwtSvidCache } from './jwt-cache.ts';

export { entrySpiffeId, entryMatches, type CachedX509Svid } from './cache.ts';
export { JWT_CACHE_MAX } from './jwt-cache.ts';

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
  /** The server(s): a sync pass or a JWT-SVID call that meets a dead server runs again on another (client/server-pool.ts). */
  readonly server: ServerCalls;
  readonly jitter?: () => number;
}

export class CacheManager {
  readonly #o: CacheManagerOptions;
  readonly #cache = new EntryCache();
  readonly #jwts: JwtSvidCache;
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
    this.#jwts = new JwtSvidCache(o.clock, async (entry, audience) => {
      const res = await this.#o.server.call((c, o) => c.svid.newJWTSVID({ entryId: entry.id, audience: [...audience] }, { timeoutMs: o.timeoutMs }));
      const svid = res.svid;
      if (svid === undefined) throw new ZtwimError('ERR_INTERNAL', 'server returned no jwt-svid');
      return { token: svid.token, issuedAt: Number(svid.issuedAt) * 1000, expiresAt: Number(svid.expiresAt) * 1000 };
    });
  }

  get bundle(): Bundle | undefined {
    return this.#cache.bundle;
  }
  get federated(): ReadonlyMap<string, Bundle> {
    return this.#cache.federated;
  }
  get entries(): ReadonlyMap<string, Entry> {
    return this.#cache.entries;
  }
  /** The first sync since start has completed (entries fetched, their SVIDs minted). */
  get synced(): boolean {
    return this.#synced;
  }
  /** The full entry list has been fetched since start. */
  get entriesKnown(): boolean {
    return this.#entriesKnown;
  }

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
      if (!this.#priority.has(i.entry.id)) {
        this.#priority.add(i.entry.id);
        added = true;
      }
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
      const check = (): void => {
        if (this.readiness(selectors, need) === 'ready') finish(true);
      };
      const onAbort = (): void => finish(false);
      const cancel = this.#o.clock.setTimer(maxWaitMs, () => finish(false));
      this.#waiters.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #wakeWaiters(): void {
    for (const w of [...this.#waiters]) w();
  }

  setBundle(b: Bundle): void {
    this.#cache.bundle = b;
  }

  subscribe(fn: () => void): () => void {
    return this.#cache.subscribe(fn);
  }

  #notify(): void {
    this.#cache.notify();
  }

  /** Entries (with SVIDs) matching the workload's selectors (see EntryCache.identitiesFor). */
  identitiesFor(selectors: readonly Selector[]): { entry: Entry; svid: CachedX509Svid | undefined }[] {
    return this.#cache.identitiesFor(selectors);
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
      // A pass that meets a dead server runs again on another one: what landed stays cached and
      // is not minted twice (the due SVIDs are worked out again from the cache).
      await this.#o.server.call((c) => this.#syncOnce(c, signal), signal === undefined ? {} : { signal });
      this.#failures = 0;
      if (!this.#synced) {
        this.#synced = true;
        this.#priority.clear();
        this.#o.logger.info(
          { entries: this.#cache.entries.size, svids: this.#cache.svidCount, duration_ms: this.#o.clock.nowMs() - this.#startedAt },
          'First sync complete',
        );
        this.#wakeWaiters();
      }
      return true;
    } catch (e) {
      // Banned or no longer attested (agent_state set, client/errors.ts): the agent stops. Any other
      // PermissionDenied, e.g. "Agent SVID is not active" for a call still on the connection of an
      // SVID rotated twice since, is retried on the current connection at the next sync.
      if (isZtwimError(e, 'ERR_PERMISSION_DENIED') && e.fields['agent_state'] !== undefined) throw e;
      if (signal?.aborted === true) return false;
      this.#failures++;
      this.#o.logger.warn({ err: e, failures: this.#failures }, 'Sync failed; serving cached SVIDs');
      return false;
    }
  }

  async #fetchEntries(c: ServerClient): Promise<Entry[]> {
    try {
      return await this.#syncAuthorized(c);
    } catch (e) {
      if (isZtwimError(e, 'ERR_UNIMPLEMENTED')) {
        const res = await c.entry.getAuthorizedEntries({});
        return res.entries;
      }
      throw e;
    }
  }

  /** SyncAuthorizedEntries: full list when small, else revisions then fetch changed ids. */
  async #syncAuthorized(c: ServerClient): Promise<Entry[]> {
    const ac = new AbortController();
    const requests = new RequestQueue<{ ids: string[] }>([{ ids: [] }]);
    const result: Entry[] = [];
    const revisions: { id: string; revisionNumber: bigint }[] = [];
    let stage: 'initial' | 'entries' = 'initial';
    let need = 0;
    let got = 0;
    try {
      for await (const res of c.entry.syncAuthorizedEntries(requests, streamCallOptions(ac))) {
        if (stage === 'initial') {
          result.push(...res.entries);
          revisions.push(...res.entryRevisions);
          if (res.more) continue;
          if (revisions.length === 0) break;
          const toFetch: string[] = [];
          for (const r of revisions) {
            const have = this.#cache.entries.get(r.id);
            if (have !== undefined && have.revisionNumber === r.revisionNumber) result.push(have);
            else toFetch.push(r.id);
          }
          if (toFetch.length === 0) break;
          stage = 'entries';
          need = toFetch.length;
          for (let i = 0; i < toFetch.length; i += 500) requests.push({ ids: toFetch.slice(i, i + 500) });
        } else {
          result.push(...res.entries);
          got += res.entries.length;
          if (!res.more && got >= need) break;
        }
      }
    } finally {
      requests.end();
      ac.abort();
    }
    return result;
  }

  async #syncOnce(c: ServerClient, signal: AbortSignal | undefined): Promise<void> {
    const entries = await this.#fetchEntries(c);
    let changed = false;
    const bundle = await c.bundle.getBundle({});
    const cache = this.#cache;
    if (cache.bundle === undefined || !bundlesEqual(cache.bundle, bundle)) {
      cache.bundle = bundle;
      changed = true;
    }
    const next = new Map(entries.map((e) => [e.id, e] as const));
    for (const id of cache.entries.keys()) {
      if (!next.has(id)) {
        cache.deleteSvid(id);
        changed = true;
      }
    }
    for (const [id, e] of next) {
      const prev = cache.entries.get(id);
      if (prev === undefined || prev.revisionNumber !== e.revisionNumber) changed = true;
    }
    cache.setEntries(next);
    // Federated bundles named by entries.
    const tds = new Set<string>();
    for (const e of entries) for (const f of e.federatesWith) tds.add(f);
    const fed = new Map<string, Bundle>();
    for (const td of tds) {
      try {
        fed.set(td, await c.bundle.getFederatedBundle({ trustDomain: td }));
      } catch (e) {
        const old = cache.federated.get(td);
        if (old !== undefined) fed.set(td, old);
        this.#o.logger.warn({ err: e, trust_domain: td }, 'Cannot fetch federated bundle');
      }
    }
    if (
      fed.size !== cache.federated.size ||
      [...fed].some(([k, v]) => {
        const o = cache.federated.get(k);
        return o === undefined || !bundlesEqual(o, v);
      })
    )
      changed = true;
    cache.federated = fed;
    if (!this.#entriesKnown) {
      this.#entriesKnown = true;
      this.#o.logger.info({ entries: next.size, duration_ms: this.#o.clock.nowMs() - this.#startedAt }, 'First sync: entries fetched');
      this.#wakeWaiters();
    }
    // SVIDs to (re)issue.
    const now = this.#o.clock.nowMs();
    const due = new Map<string, Entry>();
    for (const e of next.values()) {
      const s = cache.svid(e.id);
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
      if (e !== undefined) {
        batch.push(e);
        run.due.delete(id);
      }
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
    const onAbort = (): void => {
      failure ??= { e: signal?.reason };
    };
    if (signal?.aborted === true) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const inflight = new Set<Promise<void>>();
    let pipelined = 0;
    const launch = (batch: Entry[], inline: boolean): void => {
      if (failure !== undefined) return;
      if (!inline) pipelined++;
      const p: Promise<void> = this.#mintBatch(c, batch, now, inline)
        .then(
          (n) => {
            if (n > 0) {
              changed = true;
              this.#wakeWaiters();
            }
          },
          (e: unknown) => {
            failure ??= { e };
          },
        )
        .finally(() => {
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
    this.#o.logger.debug({ size: batch.length, inline, keys_ms: t1 - t0, server_ms: this.#o.clock.nowMs() - t1 }, 'Minted SVID batch');
    let n = 0;
    res.results.forEach((r, j) => {
      const e = batch[j];
      const k = reqs[j];
      if (e === undefined || k === undefined) return;
      if (r.svid === undefined || (r.status !== undefined && r.status.code !== 0)) {
        this.#o.logger.warn({ entry_id: e.id, status: r.status?.message }, 'Cannot issue workload SVID');
        return;
      }
      if (this.#cache.entries.get(e.id) !== e) return; // replaced or removed meanwhile
      const issuedAt = notBeforeMs(r.svid.certChain[0], now);
      const expiresAt = Number(r.svid.expiresAt) * 1000;
      this.#cache.setSvid({
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

  /** JWT-SVID for (entry, audience set), from the JWT cache or minted (see JwtSvidCache.get). */
  jwtSvid(entry: Entry, audience: readonly string[]): Promise<string> {
    return this.#jwts.get(entry, audience);
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
  const x = (bb: Bundle): string =>
    JSON.stringify({
      x: bb.x509Authorities.map((c) => Buffer.from(c.asn1).toString('base64')),
      j: bb.jwtAuthorities.map((k) => [k.keyId, Buffer.from(k.publicKey).toString('base64'), String(k.expiresAt)]),
    });
  return x(a) === x(b);
}
