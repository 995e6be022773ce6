import type { Clock, Logger } from '@ztwim/core';
import { invalidArgument, silentLogger, systemClock } from '@ztwim/core';
import { TrustDomain, WorkloadApiClient, type Backoff, type JwtBundle, type JwtBundleSet, type WorkloadApiError } from '@ztwim/spiffe';
import type { JsonWebKey } from './jwk.ts';
import { Listeners, type JwksSource, type KeySetSnapshot, type Unsubscribe } from './jwks-source.ts';

export interface WorkloadApiJwksSourceOptions {
  /** The agent's Workload API: a socket path, or an address (`unix:///path`, `tcp://ip:port`). */
  readonly address: string;
  /** Whose JWT authorities are published. */
  readonly trustDomain: string;
  /** Longest wait between reconnection attempts while the agent is away. Default 10 s (SPIRE's poll interval). */
  readonly pollIntervalMs?: number;
  /** First reconnection delay; doubles up to pollIntervalMs. Default 250 ms. */
  readonly initialBackoffMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** Exponential backoff from `initialMs`, doubling up to `maxMs`; reset after a message. */
export function exponentialBackoff(initialMs: number, maxMs: number): Backoff {
  let next = initialMs;
  return {
    next() {
      const d = Math.min(next, maxMs);
      next = Math.min(next * 2, maxMs);
      return d;
    },
    reset() {
      next = initialMs;
    },
  };
}

/** The JWT authorities of a bundle as JWKs, without `use` (as SPIRE's workload_api source). */
export function jwksOfJwtBundle(bundle: JwtBundle): JsonWebKey[] {
  const out: JsonWebKey[] = [];
  for (const [kid, jwk] of bundle.authorities()) {
    const { use: _use, ...rest } = jwk as Record<string, unknown>;
    out.push({ ...rest, kid });
  }
  return out;
}

/**
 * JWT authorities from the agent's Workload API, as the operator deploys the provider: one
 * FetchJWTBundles stream, so a key the server prepares is published as soon as the agent has
 * it. When the agent goes away the last keys stay published and the stream is re-opened with
 * an exponential backoff capped at pollIntervalMs. run() is that watch as a task.
 */
export class WorkloadApiJwksSource implements JwksSource {
  readonly trustDomain: TrustDomain;
  readonly address: string;
  private readonly client: WorkloadApiClient;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly listeners = new Listeners<KeySetSnapshot>();
  private readonly stop = new AbortController();
  private readonly maxBackoffMs: number;
  private readonly initialBackoffMs: number;
  private snapshot: KeySetSnapshot | undefined;
  private lastJson: string | undefined;
  private connected = false;
  private lastError: string | undefined;
  private lastUpdateAt: Date | undefined;

  constructor(options: WorkloadApiJwksSourceOptions) {
    try {
      this.trustDomain = TrustDomain.parse(options.trustDomain);
    } catch (e) {
      throw invalidArgument(`workload_api: trust_domain: ${(e as Error).message}`);
    }
    this.maxBackoffMs = options.pollIntervalMs ?? 10_000;
    this.initialBackoffMs = Math.min(options.initialBackoffMs ?? 250, this.maxBackoffMs);
    if (!(this.maxBackoffMs > 0)) throw invalidArgument('workload_api: pollIntervalMs must be positive');
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger();
    this.address = /^[a-z][a-z0-9+.-]*:/i.test(options.address) ? options.address : `unix://${options.address}`;
    this.client = new WorkloadApiClient({
      address: this.address,
      backoff: () => exponentialBackoff(this.initialBackoffMs, this.maxBackoffMs),
    });
  }

  current(): KeySetSnapshot | undefined {
    return this.snapshot;
  }

  onChange(listener: (snapshot: KeySetSnapshot) => void): Unsubscribe {
    return this.listeners.add(listener);
  }

  /** When the last bundle update arrived from the agent (undefined before the first). */
  lastUpdate(): Date | undefined {
    return this.lastUpdateAt;
  }

  /** Whether the stream to the agent is currently delivering. */
  isConnected(): boolean {
    return this.connected;
  }

  close(): void {
    this.stop.abort();
    this.client.close();
  }

  /**
   * The FetchJWTBundles watch as a task: re-opened with backoff whenever it ends, until the signal
   * aborts or close().
   */
  async run(signal: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([signal, this.stop.signal]);
    const backoff = exponentialBackoff(this.initialBackoffMs, this.maxBackoffMs);
    while (!stop.aborted) {
      try {
        await this.client.watchJwtBundles(
          {
            onUpdate: (set) => {
              backoff.reset();
              this.update(set);
            },
            onError: (err) => {
              if (!stop.aborted) this.onError(err);
            },
          },
          stop,
        );
      } catch (e) {
        // The SDK gives up on Canceled / InvalidArgument; an operator's provider keeps trying.
        if (stop.aborted) break;
        this.onError(e as WorkloadApiError);
      }
      if (stop.aborted) break;
      try {
        await this.clock.sleep(backoff.next(), stop);
      } catch {
        break;
      }
    }
  }

  private onError(err: WorkloadApiError | Error): void {
    if (this.stop.signal.aborted) return;
    if (this.connected) {
      this.connected = false;
      this.lastError = err.message;
      this.logger.warn({ address: this.address, err: err.message }, 'Lost the Workload API stream; serving the last keys');
    } else if (err.message !== this.lastError) {
      // e.g. the agent is not up yet, or it has no identity for us (PermissionDenied): said once per cause
      this.lastError = err.message;
      this.logger.warn({ address: this.address, err: err.message }, 'Cannot fetch JWT bundles from the Workload API; retrying');
    }
  }

  private update(set: JwtBundleSet): void {
    if (!this.connected) {
      this.connected = true;
      this.lastError = undefined;
      this.logger.info({ address: this.address }, 'Receiving JWT bundles from the Workload API');
    }
    this.lastUpdateAt = this.clock.now();
    const bundle = set.get(this.trustDomain);
    if (bundle === undefined) {
      this.logger.error({ trust_domain: this.trustDomain.idString() }, 'No bundle for the trust domain in the Workload API response');
      return;
    }
    const keys = jwksOfJwtBundle(bundle);
    const json = JSON.stringify(keys);
    if (json === this.lastJson) return;
    this.lastJson = json;
    const snap = { keys, updatedAt: this.clock.now() };
    this.snapshot = snap;
    this.logger.info({ keys: keys.map((k) => k.kid) }, 'JWT authorities updated from the Workload API');
    this.listeners.emit(snap);
  }
}
