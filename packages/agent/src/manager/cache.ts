// The agent's cache (SPIRE pkg/agent/manager/cache): authorised entries indexed by selector, the
// workload X509-SVIDs minted for them, the trust bundle and federated bundles, and the
// subscribers told when any of it changes. No I/O: the sync (sync.ts) fills it.
import { wireSpiffeIdString } from '@ztwim/core';
import type { Bundle, Entry } from '@ztwim/proto';
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

export function entrySpiffeId(e: Entry): string {
  return wireSpiffeIdString(e.spiffeId);
}

/** An entry applies when every one of its selectors is among the workload's selectors. */
export function entryMatches(e: Entry, workload: readonly Selector[]): boolean {
  const have = new Set(workload.map((s) => `${s.type}:${s.value}`));
  return e.selectors.length > 0 && e.selectors.every((s) => have.has(`${s.type}:${s.value}`));
}

export class EntryCache {
  #entries = new Map<string, Entry>();
  #bySelector = new Map<string, Entry[]>();
  readonly #svids = new Map<string, CachedX509Svid>();
  #bundle: Bundle | undefined;
  #federated = new Map<string, Bundle>();
  readonly #listeners = new Set<() => void>();

  get bundle(): Bundle | undefined {
    return this.#bundle;
  }
  set bundle(b: Bundle | undefined) {
    this.#bundle = b;
  }
  get federated(): ReadonlyMap<string, Bundle> {
    return this.#federated;
  }
  set federated(m: Map<string, Bundle>) {
    this.#federated = m;
  }
  get entries(): ReadonlyMap<string, Entry> {
    return this.#entries;
  }
  get svidCount(): number {
    return this.#svids.size;
  }

  svid(entryId: string): CachedX509Svid | undefined {
    return this.#svids.get(entryId);
  }
  setSvid(s: CachedX509Svid): void {
    this.#svids.set(s.entryId, s);
  }
  deleteSvid(entryId: string): void {
    this.#svids.delete(entryId);
  }

  subscribe(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  /**
   * Entries (with SVIDs) matching the workload's selectors. Only entries indexed under one of
   * the workload's selectors are looked at (see setEntries), so a call costs the same with
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
  setEntries(next: Map<string, Entry>): void {
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
}
