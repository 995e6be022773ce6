// Sync loop + cache: authorized entries, bundle, workload X509-SVIDs, JWT-SVIDs.
import * as crypto from 'node:crypto';
import type { Clock, Logger } from '@ztwim/core';
import { ZtwimError } from '@ztwim/core';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Bundle, Entry } from '@ztwim/proto';
import { streamCallOptions, type ServerClient } from '../client/server-client.ts';
import { createCsr, generateEcKey } from '../client/csr.ts';
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
  return e.spiffeId === undefined ? '' : `spiffe://${e.spiffeId.trustDomain}${e.spiffeId.path}`;
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
  #bundle: Bundle | undefined;
  #federated = new Map<string, Bundle>();
  readonly #listeners = new Set<() => void>();
  #failures = 0;
  #synced = false;

  constructor(o: CacheManagerOptions) { this.#o = o; }

  get bundle(): Bundle | undefined { return this.#bundle; }
  get federated(): ReadonlyMap<string, Bundle> { return this.#federated; }
  get entries(): ReadonlyMap<string, Entry> { return this.#entries; }
  get synced(): boolean { return this.#synced; }

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

  /** One sync pass. Never throws for server unavailability; returns false on failure. */
  async sync(): Promise<boolean> {
    try {
      await this.#syncOnce();
      this.#failures = 0;
      this.#synced = true;
      return true;
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.PermissionDenied) throw e;
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

  async #syncOnce(): Promise<void> {
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
    // SVIDs to (re)issue.
    const now = this.#o.clock.nowMs();
    const due = [...next.values()].filter((e) => {
      const s = this.#svids.get(e.id);
      return s === undefined || s.revision !== e.revisionNumber || now >= s.rotateAt;
    });
    for (let i = 0; i < due.length; i += 500) {
      const batch = due.slice(i, i + 500);
      const keys = batch.map(() => generateEcKey());
      const res = await c.svid.batchNewX509SVID({
        params: batch.map((e, j) => ({ entryId: e.id, csr: createCsr(keys[j]!.privateKey, keys[j]!.publicKey) })),
      });
      res.results.forEach((r, j) => {
        const e = batch[j];
        const k = keys[j];
        if (e === undefined || k === undefined) return;
        if (r.svid === undefined || (r.status !== undefined && r.status.code !== 0)) {
          this.#o.logger.warn({ entryId: e.id, status: r.status?.message }, 'cannot issue workload svid');
          return;
        }
        const leaf = new crypto.X509Certificate(Buffer.from(r.svid.certChain[0] ?? new Uint8Array()));
        const issuedAt = Date.parse(leaf.validFrom);
        const expiresAt = Number(r.svid.expiresAt) * 1000;
        this.#svids.set(e.id, {
          entryId: e.id,
          spiffeId: entrySpiffeId(e),
          chain: r.svid.certChain,
          keyDer: new Uint8Array(k.privateKey.export({ type: 'pkcs8', format: 'der' })),
          issuedAt,
          expiresAt,
          revision: e.revisionNumber,
          rotateAt: rotationTime(Math.min(issuedAt, now), expiresAt, (this.#o.jitter ?? Math.random)()),
        });
        changed = true;
      });
    }
    if (changed) this.#notify();
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

function bundlesEqual(a: Bundle, b: Bundle): boolean {
  const x = (bb: Bundle): string => JSON.stringify({
    x: bb.x509Authorities.map((c) => Buffer.from(c.asn1).toString('base64')),
    j: bb.jwtAuthorities.map((k) => [k.keyId, Buffer.from(k.publicKey).toString('base64'), String(k.expiresAt)]),
  });
  return x(a) === x(b);
}
