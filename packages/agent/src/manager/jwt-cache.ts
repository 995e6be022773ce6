// The agent's JWT-SVID cache (SPIRE pkg/agent/manager/cache JWT-SVID cache): tokens per (entry,
// audience set), reused until half-life, least recently used dropped first.
import type { Clock } from '@ztwim/core';
import type { Entry } from '@ztwim/proto';

/** JWT-SVIDs the agent keeps cached (least recently used dropped first); SPIRE's default size. */
export const JWT_CACHE_MAX = 1000;

/** A JWT-SVID as the server returned it; times in milliseconds since the epoch. */
export interface MintedJwt {
  readonly token: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export class JwtSvidCache {
  readonly #clock: Clock;
  readonly #mint: (entry: Entry, audience: readonly string[]) => Promise<MintedJwt>;
  readonly #jwts = new Map<string, MintedJwt>();
  /** NewJWTSVID calls under way, by cache key: concurrent misses for one token share one call. */
  readonly #inFlight = new Map<string, Promise<string>>();

  constructor(clock: Clock, mint: (entry: Entry, audience: readonly string[]) => Promise<MintedJwt>) {
    this.#clock = clock;
    this.#mint = mint;
  }

  /**
   * JWT-SVID for (entry, audience set), cached until half-life. The cache keeps the
   * JWT_CACHE_MAX most recently used tokens (SPIRE's `jwt_svid_cache_max_size` default), so a
   * workload asking for ever new audiences costs neither unbounded memory nor a scan per call.
   */
  async get(entry: Entry, audience: readonly string[]): Promise<string> {
    const aud = [...new Set(audience)].sort();
    const key = `${entry.id}\u0000${aud.join('\u0000')}`;
    const now = this.#clock.nowMs();
    const hit = this.#jwts.get(key);
    if (hit !== undefined && now < hit.issuedAt + (hit.expiresAt - hit.issuedAt) / 2) {
      this.#jwts.delete(key); // most recently used goes last
      this.#jwts.set(key, hit);
      return hit.token;
    }
    // Workloads starting together ask for the same token at once: one server call for all of
    // them (200 JWT clients of a burst made 200 NewJWTSVID calls for one token before).
    const flying = this.#inFlight.get(key);
    if (flying !== undefined) return flying;
    const p = this.#fetch(entry, audience, key, now);
    this.#inFlight.set(key, p);
    try {
      return await p;
    } finally {
      this.#inFlight.delete(key);
    }
  }

  async #fetch(entry: Entry, audience: readonly string[], key: string, now: number): Promise<string> {
    const svid = await this.#mint(entry, audience);
    this.#jwts.delete(key);
    this.#jwts.set(key, { token: svid.token, issuedAt: svid.issuedAt || now, expiresAt: svid.expiresAt });
    for (const k of this.#jwts.keys()) {
      if (this.#jwts.size <= JWT_CACHE_MAX) break;
      this.#jwts.delete(k);
    }
    return svid.token;
  }
}
