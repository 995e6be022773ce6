// A mirror of nghttp2's defence against HTTP/2 rapid reset (CVE-2023-44487), so that a connection
// is closed gracefully before nghttp2 kills it.
//
// nghttp2 (1.57+, which Node 20 bundles) keeps a token bucket per server session: it starts full
// at `burst` (1,000) tokens, regains `rate` (33) per second up to `burst`, and every RST_STREAM
// the client sends takes one. When a reset finds the bucket empty, nghttp2 answers
// GOAWAY(INTERNAL_ERROR): a node:http2 client (grpc-js, our SDK) then fails every call still open
// on the connection ("Session closed with error code 2"), a watch included. Node 20 does not expose the bucket's settings (Node 23's
// `streamResetBurst`/`streamResetRate` server options are ignored by Node 20), and a legitimate
// client can empty it: go-spiffe's `FetchX509SVID`, py-spiffe's `fetch_x509_svid` and our SDK's
// one-shot fetches each open a server stream, take its first message and cancel the stream, so
// a workload that polls faster than 33 calls/s on one connection is cut off after ~1,000 calls.
//
// This bucket counts the same resets (the streams the client ended with a non-zero RST_STREAM
// code) with the same burst and rate. When fewer than `lowWater` tokens are left, the server
// sends GOAWAY(NO_ERROR) with the last stream it processed instead (connection-guard.ts): gRPC
// clients finish the calls they have open and dial a new connection for the next ones, which
// starts with a full bucket. A real flood still ends its connection, gracefully or (if its
// resets arrive faster than this side hears of them) by nghttp2's own limit.
//
// nghttp2 refills in whole seconds of its own monotonic clock, so it may be up to `rate` tokens
// behind this continuous refill: `lowWater` (100) leaves room for that and for the resets nghttp2
// has read but Node has not yet reported.

export interface ResetBudgetOptions {
  /** Tokens at the start and at most; nghttp2's default is 1,000. */
  readonly burst?: number;
  /** Tokens regained per second; nghttp2's default is 33. */
  readonly ratePerSecond?: number;
  /** Below this many tokens the connection should be closed gracefully. Default 100. */
  readonly lowWater?: number;
}

export const NGHTTP2_RESET_BURST = 1000;
export const NGHTTP2_RESET_RATE = 33;
export const DEFAULT_RESET_LOW_WATER = 100;

export class ResetBudget {
  readonly #burst: number;
  readonly #rate: number;
  readonly #lowWater: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /** `now` is a monotonic clock in milliseconds (performance.now in production, a fake in tests). */
  constructor(now: () => number, opts: ResetBudgetOptions = {}) {
    this.#burst = opts.burst ?? NGHTTP2_RESET_BURST;
    this.#rate = opts.ratePerSecond ?? NGHTTP2_RESET_RATE;
    this.#lowWater = opts.lowWater ?? DEFAULT_RESET_LOW_WATER;
    this.#now = now;
    this.#tokens = this.#burst;
    this.#at = now();
  }

  /** Tokens left now (fractional: the refill is continuous). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Counts one reset by the peer; returns true once the budget is low (close the connection gracefully). */
  reset(): boolean {
    this.#refill();
    this.#tokens = Math.max(0, this.#tokens - 1);
    return this.#tokens < this.#lowWater;
  }

  #refill(): void {
    const now = this.#now();
    if (now > this.#at) this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    this.#at = Math.max(this.#at, now);
  }
}
