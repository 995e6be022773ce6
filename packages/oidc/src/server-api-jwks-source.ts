import { createPublicKey } from 'node:crypto';
import { createClient, type Client } from '@connectrpc/connect';
import type { Cancel, Clock, Logger } from '@ztwim/core';
import { invalidArgument, silentLogger, systemClock } from '@ztwim/core';
import { BundleService, createUnixGrpcTransport, type Bundle, type GrpcClientTransport } from '@ztwim/proto';
import type { JsonWebKey } from './jwk.ts';
import { Listeners, type JwksSource, type KeySetSnapshot, type Unsubscribe } from './jwks-source.ts';

export interface ServerApiJwksSourceOptions {
  /** The server's admin API Unix socket. */
  readonly socketPath: string;
  /** How often the bundle is read. Default 10 s (SPIRE). */
  readonly pollIntervalMs?: number;
  /** Before the first key set arrives, retries start this fast and double up to pollIntervalMs. Default 250 ms. */
  readonly initialRetryMs?: number;
  /** Deadline of one GetBundle call. Default 10 s. */
  readonly callTimeoutMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export const DEFAULT_SERVER_API_POLL_INTERVAL_MS = 10_000;

/** The JWT authorities of a server API bundle as JWKs (the SPKI DER turned into JWK members plus kid). */
export function jwksOfServerBundle(bundle: Bundle): JsonWebKey[] {
  const out: JsonWebKey[] = [];
  for (const k of bundle.jwtAuthorities) {
    if (k.keyId === '') continue;
    let jwk: Record<string, unknown>;
    try {
      jwk = createPublicKey({ key: Buffer.from(k.publicKey), format: 'der', type: 'spki' }).export({ format: 'jwk' }) as Record<string, unknown>;
    } catch {
      // an unparsable key: published without its parameters, the handler drops it with a reason
      jwk = {};
    }
    out.push({ ...jwk, kid: k.keyId });
  }
  return out;
}

/**
 * JWT authorities read from the server API (BundleService.GetBundle) over the server's admin
 * Unix socket every poll interval. A failed call keeps the last keys; until the first key set
 * arrives, retries are quicker (exponential from initialRetryMs).
 */
export class ServerApiJwksSource implements JwksSource {
  readonly socketPath: string;
  private readonly intervalMs: number;
  private readonly initialRetryMs: number;
  private readonly callTimeoutMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly listeners = new Listeners<KeySetSnapshot>();
  private transport: GrpcClientTransport | undefined;
  private client: Client<typeof BundleService> | undefined;
  private snapshot: KeySetSnapshot | undefined;
  private lastJson: string | undefined;
  private cancelTimer: Cancel | undefined;
  private closed = false;
  private failing = false;
  private retryMs: number;
  private inFlight: Promise<boolean> | undefined;
  private lastSuccessAt: Date | undefined;

  constructor(options: ServerApiJwksSourceOptions) {
    if (options.socketPath === '') throw invalidArgument('server_api: socket path is empty');
    this.socketPath = options.socketPath;
    this.intervalMs = options.pollIntervalMs ?? DEFAULT_SERVER_API_POLL_INTERVAL_MS;
    if (!(this.intervalMs > 0)) throw invalidArgument('server_api: pollIntervalMs must be positive');
    this.initialRetryMs = Math.min(options.initialRetryMs ?? 250, this.intervalMs);
    this.retryMs = this.initialRetryMs;
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger();
    void this.tick();
  }

  current(): KeySetSnapshot | undefined {
    return this.snapshot;
  }

  onChange(listener: (snapshot: KeySetSnapshot) => void): Unsubscribe {
    return this.listeners.add(listener);
  }

  /** When GetBundle last succeeded. */
  lastSuccess(): Date | undefined {
    return this.lastSuccessAt;
  }

  /** Reads the bundle now; resolves to whether the key set changed. Never rejects. */
  poll(): Promise<boolean> {
    this.inFlight ??= this.read().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.dropConnection();
  }

  private dropConnection(): void {
    this.transport?.close();
    this.transport = undefined;
    this.client = undefined;
  }

  private async tick(): Promise<void> {
    const ok = await this.poll();
    if (this.closed) return;
    let delay = this.intervalMs;
    if (!ok && this.snapshot === undefined) {
      delay = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, this.intervalMs);
    }
    this.cancelTimer = this.clock.setTimer(delay, () => {
      void this.tick();
    });
  }

  /** Resolves true when the call succeeded (changed or not). */
  private async read(): Promise<boolean> {
    if (this.closed) return false;
    if (this.client === undefined) {
      this.transport = createUnixGrpcTransport(this.socketPath, { defaultTimeoutMs: this.callTimeoutMs });
      this.client = createClient(BundleService, this.transport);
    }
    let bundle: Bundle;
    try {
      bundle = await this.client.getBundle({});
    } catch (e) {
      if (this.closed) return false;
      // a fresh connection next time (the server may have restarted)
      this.dropConnection();
      if (!this.failing) {
        this.failing = true;
        this.logger.warn({ socketPath: this.socketPath, err: (e as Error).message }, 'cannot read the bundle from the server API; serving the last keys');
      }
      return false;
    }
    if (this.closed) return false;
    if (this.failing) {
      this.failing = false;
      this.logger.info({ socketPath: this.socketPath }, 'reading the bundle from the server API again');
    }
    this.lastSuccessAt = this.clock.now();
    this.retryMs = this.initialRetryMs;
    const keys = jwksOfServerBundle(bundle);
    const json = JSON.stringify(keys);
    if (json === this.lastJson) return true;
    this.lastJson = json;
    const snap = { keys, updatedAt: this.clock.now() };
    this.snapshot = snap;
    this.logger.info({ keys: keys.map((k) => k.kid) }, 'JWT authorities updated from the server API');
    this.listeners.emit(snap);
    return true;
  }
}
