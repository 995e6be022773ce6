import { setTimeout as delay } from 'node:timers/promises';
import { asError, every, silentLogger, type Clock, type Logger, type Task } from '@ztwim/core';
import type { TrustDomain } from '@ztwim/spiffe';
import type { DataStore } from '../datastore/datastore.ts';

/** How often a server re-reads the shared bundle from the datastore (ms); see docs/ha.md. */
export const BUNDLE_REFRESH_MS = 5_000;

/**
 * The X.509 authorities a server trusts for its own trust domain: its own CA's keys, and every
 * key in the bundle stored in the datastore, which holds the keys of every server sharing it
 * (docs/ha.md). The stored bundle is re-read every refresh interval, so a key another server
 * prepared is trusted here within that interval. The list keeps the very same buffers while
 * nothing changes, which the peer verifier's cache relies on.
 */
export class SharedAuthorities {
  readonly #ds: Pick<DataStore, 'getBundle'>;
  readonly #td: TrustDomain;
  readonly #clock: Clock;
  readonly #local: () => readonly Uint8Array[];
  readonly #refreshMs: number;
  readonly #log: Logger;
  #stored: readonly Uint8Array[] = [];
  #storedSeq: bigint | undefined;
  #merged: readonly Uint8Array[] = [];
  #mergedFrom: { stored: readonly Uint8Array[]; local: readonly Uint8Array[] } = { stored: [], local: [] };
  #lastRefreshMs: number | undefined;
  #inFlight: Promise<boolean> | undefined;
  /** performance.now() when the last read started (-Infinity: never). */
  #lastReadAt = -Infinity;
  readonly #onRead: ((ms: number) => void) | undefined;

  constructor(deps: {
    dataStore: Pick<DataStore, 'getBundle'>;
    trustDomain: TrustDomain;
    clock: Clock;
    /** This server's own authorities (trusted even before the stored bundle shows them). */
    local: () => readonly Uint8Array[];
    refreshMs?: number;
    log?: Logger;
    /** Called with the clock time of every read that succeeded (health, metrics). */
    onRead?: (ms: number) => void;
  }) {
    this.#ds = deps.dataStore;
    this.#td = deps.trustDomain;
    this.#clock = deps.clock;
    this.#local = deps.local;
    this.#refreshMs = deps.refreshMs ?? BUNDLE_REFRESH_MS;
    this.#log = deps.log ?? silentLogger();
    this.#onRead = deps.onRead;
  }

  /** When the stored bundle was last read (clock ms), or undefined before the first read. */
  get lastRefreshMs(): number | undefined {
    return this.#lastRefreshMs;
  }

  /** Reads the stored bundle now. */
  async refresh(): Promise<void> {
    this.#lastReadAt = performance.now();
    const b = await this.#ds.getBundle(this.#td.name);
    this.#lastRefreshMs = this.#clock.nowMs();
    this.#onRead?.(this.#lastRefreshMs);
    if (b === null || b.sequenceNumber === this.#storedSeq) return;
    this.#storedSeq = b.sequenceNumber;
    this.#stored = b.x509Authorities.map((a) => a.asn1);
  }

  /**
   * Re-reads the stored bundle, at most once per `minAgeMs`: when the last read is younger, the
   * read waits until it is that old (one read at a time, shared by concurrent callers). Resolves
   * whether the stored authorities changed. For a caller's SVID signed by a CA this server does
   * not know yet (a server that has just joined): such a caller waits up to `minAgeMs`, rather
   * than being refused because this server read the bundle just before the other server wrote it.
   */
  refreshIfOlderThan(minAgeMs: number): Promise<boolean> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    // A rate limit on datastore reads, so it runs on real time (performance.now), not on the
    // injected clock: a test's frozen FakeClock must not stall a caller forever.
    const wait = Math.max(0, minAgeMs - (performance.now() - this.#lastReadAt));
    const before = this.#stored;
    const run = (wait > 0 ? delay(wait) : Promise.resolve())
      .then(() => this.refresh())
      .then(() => this.#stored !== before)
      .finally(() => {
        this.#inFlight = undefined;
      });
    this.#inFlight = run;
    return run;
  }

  /** Re-reads the stored bundle every refresh interval; a failed read keeps the last one (logged). */
  task(): Task {
    return every(this.#clock, this.#refreshMs, () => this.refresh(), {
      name: 'bundle_refresh',
      immediate: false,
      onError: (e) => this.#log.warn({ error: asError(e).message }, 'Reading the shared trust bundle failed; the last one read stays in use'),
    });
  }

  /** The authorities to trust now: the stored ones, then this server's own not yet among them. */
  x509Authorities(): readonly Uint8Array[] {
    const local = this.#local();
    const from = this.#mergedFrom;
    if (from.stored === this.#stored && sameRefs(from.local, local)) return this.#merged;
    const seen = new Set(this.#stored.map((d) => Buffer.from(d).toString('base64')));
    this.#merged = [...this.#stored, ...local.filter((d) => !seen.has(Buffer.from(d).toString('base64')))];
    this.#mergedFrom = { stored: this.#stored, local: [...local] };
    return this.#merged;
  }
}

function sameRefs(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
