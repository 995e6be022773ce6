import { createClient, type Client } from '@connectrpc/connect';
import type { Clock, Logger } from '@ztwim/core';
import { invalidArgument, jwkFromSpki } from '@ztwim/core';
import { BundleService, createUnixGrpcTransport, type Bundle, type GrpcClientTransport } from '@ztwim/proto';
import type { JsonWebKey } from './jwk.ts';
import { PollingJwksSource } from './polling-jwks-source.ts';

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
export interface JwtAuthoritiesHolder {
  readonly jwtAuthorities: readonly { readonly keyId: string; readonly publicKey: Uint8Array }[];
}

export function jwksOfServerBundle(bundle: JwtAuthoritiesHolder): JsonWebKey[] {
  const out: JsonWebKey[] = [];
  for (const k of bundle.jwtAuthorities) {
    if (k.keyId === '') continue;
    let jwk: JsonWebKey;
    try {
      jwk = jwkFromSpki(k.publicKey);
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
 * Unix socket every poll interval (run()). A failed call keeps the last keys; until the first key set
 * arrives, retries are quicker (exponential from initialRetryMs).
 */
export class ServerApiJwksSource extends PollingJwksSource {
  readonly socketPath: string;
  protected readonly taskName = 'jwks_server_api_poll';
  private readonly initialRetryMs: number;
  private readonly callTimeoutMs: number;
  private transport: GrpcClientTransport | undefined;
  private client: Client<typeof BundleService> | undefined;
  private lastJson: string | undefined;
  private failing = false;
  private retryMs: number;
  private lastSuccessAt: Date | undefined;

  constructor(options: ServerApiJwksSourceOptions) {
    if (options.socketPath === '') throw invalidArgument('server_api: socket path is empty');
    const intervalMs = options.pollIntervalMs ?? DEFAULT_SERVER_API_POLL_INTERVAL_MS;
    if (!(intervalMs > 0)) throw invalidArgument('server_api: pollIntervalMs must be positive');
    super({ intervalMs, clock: options.clock, logger: options.logger });
    this.socketPath = options.socketPath;
    this.initialRetryMs = Math.min(options.initialRetryMs ?? 250, this.intervalMs);
    this.retryMs = this.initialRetryMs;
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
  }

  /** When GetBundle last succeeded. */
  lastSuccess(): Date | undefined {
    return this.lastSuccessAt;
  }

  protected override onClose(): void {
    this.dropConnection();
  }

  /** Until the first key set arrives, failed reads are retried sooner (doubling up to the interval). */
  protected override nextDelayMs(lastReadOk: boolean): number {
    if (lastReadOk || this.snapshot !== undefined) return this.intervalMs;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.intervalMs);
    return delay;
  }

  private dropConnection(): void {
    this.transport?.close();
    this.transport = undefined;
    this.client = undefined;
  }

  /** Resolves true when the call succeeded (changed or not). */
  protected async read(): Promise<boolean> {
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
        this.logger.warn({ socket_path: this.socketPath, err: (e as Error).message }, 'Cannot read the bundle from the server API; serving the last keys');
      }
      return false;
    }
    if (this.closed) return false;
    if (this.failing) {
      this.failing = false;
      this.logger.info({ socket_path: this.socketPath }, 'Reading the bundle from the server API again');
    }
    this.lastSuccessAt = this.clock.now();
    this.retryMs = this.initialRetryMs;
    const keys = jwksOfServerBundle(bundle);
    const json = JSON.stringify(keys);
    if (json === this.lastJson) return true;
    this.lastJson = json;
    this.logger.info({ keys: keys.map((k) => k.kid) }, 'JWT authorities updated from the server API');
    this.publish(keys);
    return true;
  }
}
