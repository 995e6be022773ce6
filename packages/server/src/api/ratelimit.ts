import type { Interceptor } from '@connectrpc/connect';
import { ZtwimError, type Clock } from '@ztwim/core';
import { parseGrpcTimeout } from '@ztwim/proto';
import { transportKey } from './caller.ts';

/**
 * SPIRE's server rate limits (`server { ratelimit { attestation signing } }`, both on by default):
 * per caller IP, a token bucket of `limit` tokens per second holding at most `limit` tokens
 * (golang.org/x/time/rate with burst = limit, SPIRE's pkg/server/api/middleware/ratelimit.go).
 * A call takes one token (BatchNewX509SVID one per CSR) and waits for it; it is refused with
 * ResourceExhausted only when it asks for more than the burst or its deadline would pass before
 * its token is due. Calls over the admin Unix socket are never limited.
 *
 * Written here rather than taken from an npm limiter: the refusal and wait rules, including the
 * deadline check before a token is taken and the token refund of a cancelled wait, must be those
 * of x/time/rate for the caller to see what SPIRE's callers see, and no npm limiter has them.
 */

/** SPIRE's pkg/server/api/limits. */
export const ATTEST_LIMIT_PER_IP = 1;
export const SIGN_LIMIT_PER_IP = 500;
export const PUSH_JWT_KEY_LIMIT_PER_IP = 500;
/** How often per-IP buckets unused since the previous collection are dropped (SPIRE's gcInterval). */
export const LIMITER_GC_INTERVAL_MS = 60_000;

export interface RateLimitConfig {
  readonly attestation: boolean;
  readonly signing: boolean;
}

export const RATE_LIMIT_DEFAULTS: RateLimitConfig = { attestation: true, signing: true };

/** One token taken ahead: when the caller may go, and how many tokens it holds. */
interface Reservation {
  readonly tokens: number;
  readonly timeToActMs: number;
}

/** A token bucket with x/time/rate's reserve/cancel arithmetic (times in ms, limit per second). */
export class TokenBucket {
  readonly limit: number;
  readonly burst: number;
  #tokens: number;
  #lastMs: number;
  #lastEventMs: number;

  constructor(limit: number, burst: number, nowMs: number) {
    this.limit = limit;
    this.burst = burst;
    this.#tokens = burst;
    this.#lastMs = nowMs;
    this.#lastEventMs = nowMs;
  }

  #tokensAt(nowMs: number): number {
    const elapsed = Math.max(0, nowMs - this.#lastMs);
    return Math.min(this.burst, this.#tokens + (elapsed * this.limit) / 1000);
  }

  /** Tokens available at nowMs (negative while callers wait for theirs). */
  available(nowMs: number): number {
    return this.#tokensAt(nowMs);
  }

  /**
   * Takes n tokens if the caller would get them within maxWaitMs; undefined (nothing taken)
   * otherwise, as x/time/rate's reserveN.
   */
  reserve(n: number, nowMs: number, maxWaitMs: number): Reservation | undefined {
    const tokens = this.#tokensAt(nowMs) - n;
    const waitMs = tokens < 0 ? (-tokens * 1000) / this.limit : 0;
    if (n > this.burst || waitMs > maxWaitMs) return undefined;
    const r = { tokens: n, timeToActMs: nowMs + waitMs };
    this.#lastMs = nowMs;
    this.#tokens = tokens;
    this.#lastEventMs = r.timeToActMs;
    return r;
  }

  /** Gives back what a reservation abandoned before its time can (x/time/rate's CancelAt). */
  cancel(r: Reservation, nowMs: number): void {
    if (r.timeToActMs < nowMs) return;
    // Tokens reserved by later callers since r cannot be given back.
    const restore = r.tokens - ((this.#lastEventMs - r.timeToActMs) * this.limit) / 1000;
    if (restore <= 0) return;
    this.#tokens = Math.min(this.burst, this.#tokensAt(nowMs) + restore);
    this.#lastMs = nowMs;
    if (r.timeToActMs === this.#lastEventMs) {
      const prev = r.timeToActMs - (r.tokens * 1000) / this.limit;
      if (prev >= nowMs) this.#lastEventMs = prev;
    }
  }
}

/** Why a wait was refused; the message is SPIRE's (x/time/rate's, after SPIRE's own burst check). */
export class RateLimitRefusal extends Error {}

/**
 * A per-IP limiter shared by a group of methods, with SPIRE's collection of idle IPs: every
 * minute (checked when a new IP arrives) the buckets not used since the last collection go.
 */
export class PerIpLimiter {
  readonly limit: number;
  readonly #clock: Clock;
  #current = new Map<string, TokenBucket>();
  #previous = new Map<string, TokenBucket>();
  #lastGcMs: number;

  constructor(limit: number, clock: Clock) {
    this.limit = limit;
    this.#clock = clock;
    this.#lastGcMs = clock.nowMs();
  }

  /** Number of IPs with a bucket (current and previous generation). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  bucket(ip: string): TokenBucket {
    let b = this.#current.get(ip);
    if (b !== undefined) return b;
    b = this.#previous.get(ip);
    if (b !== undefined) {
      this.#current.set(ip, b);
      this.#previous.delete(ip);
      return b;
    }
    const now = this.#clock.nowMs();
    if (now - this.#lastGcMs >= LIMITER_GC_INTERVAL_MS) {
      this.#previous = this.#current;
      this.#current = new Map();
      this.#lastGcMs = now;
    }
    b = new TokenBucket(this.limit, this.limit, now);
    this.#current.set(ip, b);
    return b;
  }

  /**
   * Waits until `count` tokens of ip's bucket are due. Rejects with a RateLimitRefusal (SPIRE:
   * ResourceExhausted) when count exceeds the burst or the wait would pass deadlineMs (a
   * clock time), and with the signal's reason if the call ends while it waits (its tokens given
   * back as far as they can be).
   */
  async wait(ip: string, count: number, deadlineMs: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    const b = this.bucket(ip);
    // SPIRE checks this before x/time/rate does, for a cleaner message.
    if (count > b.burst) throw new RateLimitRefusal(`rate (${count}) exceeds burst size (${b.burst})`);
    if (signal?.aborted === true) throw signal.reason;
    const now = this.#clock.nowMs();
    const r = b.reserve(count, now, deadlineMs === undefined ? Infinity : deadlineMs - now);
    if (r === undefined) throw new RateLimitRefusal(`rate: Wait(n=${count}) would exceed context deadline`);
    const delay = r.timeToActMs - now;
    if (delay <= 0) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        cancelTimer();
        b.cancel(r, this.#clock.nowMs());
        reject(signal?.reason);
      };
      const cancelTimer = this.#clock.setTimer(delay, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Go's net.IP.String() of a TCP peer: IPv4-mapped IPv6 addresses as plain IPv4. */
export function callerIp(remoteAddress: string): string {
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}

interface LimitedMethod {
  readonly limiter: PerIpLimiter;
  /** SPIRE's prefix of the refusal, "rejecting request due to …". */
  readonly what: string;
  /** Tokens a call takes; 0: not limited (the handler refuses it as InvalidArgument first). */
  readonly count: (message: unknown) => number;
}

const one = (): number => 1;
const csrCount = (message: unknown): number => (message as { params?: readonly unknown[] } | undefined)?.params?.length ?? 0;

/**
 * Method → limiter, as SPIRE's endpoints.RateLimits: AttestAgent on the attestation limiter (1/s
 * per IP); BatchNewX509SVID, RenewAgent and NewDownstreamX509CA share one signing limiter and
 * NewJWTSVID has its own (500/s per IP each); PublishJWTAuthority is limited (500/s per IP)
 * whatever the config says. Every other method is not limited.
 */
export function rateLimitedMethods(cfg: RateLimitConfig, clock: Clock): ReadonlyMap<string, LimitedMethod> {
  const m = new Map<string, LimitedMethod>();
  if (cfg.attestation) {
    m.set('spire.api.server.agent.v1.Agent/AttestAgent', {
      limiter: new PerIpLimiter(ATTEST_LIMIT_PER_IP, clock),
      what: 'attest agent rate limiting',
      count: one,
    });
  }
  if (cfg.signing) {
    const csr = new PerIpLimiter(SIGN_LIMIT_PER_IP, clock);
    const jsr = new PerIpLimiter(SIGN_LIMIT_PER_IP, clock);
    m.set('spire.api.server.svid.v1.SVID/BatchNewX509SVID', { limiter: csr, what: 'certificate signing rate limiting', count: csrCount });
    m.set('spire.api.server.agent.v1.Agent/RenewAgent', { limiter: csr, what: 'renew agent rate limiting', count: one });
    m.set('spire.api.server.svid.v1.SVID/NewDownstreamX509CA', { limiter: csr, what: 'downstream CA signing rate limit', count: one });
    m.set('spire.api.server.svid.v1.SVID/NewJWTSVID', { limiter: jsr, what: 'JWT signing request rate limiting', count: one });
  }
  m.set('spire.api.server.bundle.v1.Bundle/PublishJWTAuthority', {
    limiter: new PerIpLimiter(PUSH_JWT_KEY_LIMIT_PER_IP, clock),
    what: 'key publishing rate limiting',
    count: one,
  });
  return m;
}

/**
 * The rate-limit interceptor: placed after authorization (as SPIRE's middleware, whose handlers
 * take their token once the caller is authorised). TCP callers only; the admin socket is not limited.
 */
export function rateLimitInterceptor(cfg: RateLimitConfig, clock: Clock): Interceptor {
  const methods = rateLimitedMethods(cfg, clock);
  return (next) => async (req) => {
    const limited = methods.get(`${req.service.typeName}/${req.method.name}`);
    if (limited === undefined) return next(req);
    const transport = req.contextValues.get(transportKey);
    if (transport.kind === 'local') return next(req);
    const count = req.stream ? 1 : limited.count(req.message);
    if (count === 0) return next(req);
    const timeoutMs = parseGrpcTimeout(req.header.get('grpc-timeout') ?? undefined);
    try {
      await limited.limiter.wait(callerIp(transport.remoteAddress), count, timeoutMs === undefined ? undefined : clock.nowMs() + timeoutMs, req.signal);
    } catch (e) {
      if (e instanceof RateLimitRefusal) {
        throw new ZtwimError('ERR_RESOURCE_EXHAUSTED', `rejecting request due to ${limited.what}: ${e.message}`, {
          fields: { caller_addr: transport.remoteAddress },
        });
      }
      throw e;
    }
    return next(req);
  };
}
