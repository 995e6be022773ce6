import { readFile } from 'node:fs/promises';
import type { Clock, Cancel, Logger } from '@ztwim/core';
import { silentLogger, systemClock, invalidArgument } from '@ztwim/core';
import type { JsonWebKey } from './jwk.ts';
import { Listeners, type JwksSource, type KeySetSnapshot, type Unsubscribe } from './jwks-source.ts';

export interface FileJwksSourceOptions {
  /** Poll interval; SPIRE's file source default is 10 s. */
  readonly pollIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export const DEFAULT_FILE_POLL_INTERVAL_MS = 10_000;

/**
 * Parses a SPIFFE bundle (JWK Set) and returns its JWT authorities (`use: "jwt-svid"`),
 * without their `use` member (the provider adds `use: "sig"` when asked to).
 */
export function jwtAuthoritiesFromBundle(text: string): JsonWebKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`bundle: invalid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw invalidArgument('bundle: not a JSON object');
  }
  const keys = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw invalidArgument('bundle: missing "keys" array');
  const out: JsonWebKey[] = [];
  keys.forEach((k: unknown, i) => {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) {
      throw invalidArgument(`bundle: key entry ${i} is not an object`);
    }
    const jwk = k as JsonWebKey;
    if (jwk.use !== 'jwt-svid') return;
    const { use: _use, ...rest } = jwk;
    out.push(rest);
  });
  return out;
}

/**
 * JWT authorities from a SPIFFE bundle file on disk, re-read every poll interval.
 * A read or parse failure keeps the last good key set (and is logged).
 */
export class FileJwksSource implements JwksSource {
  readonly path: string;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly listeners = new Listeners<KeySetSnapshot>();
  private snapshot: KeySetSnapshot | undefined;
  private lastText: string | undefined;
  private cancelTimer: Cancel | undefined;
  private closed = false;
  private inFlight: Promise<boolean> | undefined;

  constructor(path: string, options: FileJwksSourceOptions = {}) {
    this.path = path;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger();
    this.intervalMs = options.pollIntervalMs ?? DEFAULT_FILE_POLL_INTERVAL_MS;
    if (!(this.intervalMs > 0)) throw invalidArgument('file: pollIntervalMs must be positive');
    void this.tick();
  }

  current(): KeySetSnapshot | undefined {
    return this.snapshot;
  }

  onChange(listener: (snapshot: KeySetSnapshot) => void): Unsubscribe {
    return this.listeners.add(listener);
  }

  /** Reads the file now; resolves to whether the key set changed. */
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
  }

  private async tick(): Promise<void> {
    await this.poll();
    if (this.closed) return;
    this.cancelTimer = this.clock.setTimer(this.intervalMs, () => {
      void this.tick();
    });
  }

  private async read(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      this.logger.warn({ path: this.path, err: (e as Error).message }, 'cannot read bundle file');
      return false;
    }
    if (this.closed || text === this.lastText) return false;
    let keys: JsonWebKey[];
    try {
      keys = jwtAuthoritiesFromBundle(text);
    } catch (e) {
      this.logger.warn({ path: this.path, err: (e as Error).message }, 'cannot parse bundle file');
      return false;
    }
    this.lastText = text;
    if (this.snapshot !== undefined && JSON.stringify(this.snapshot.keys) === JSON.stringify(keys)) return false;
    const snap = { keys, updatedAt: this.clock.now() };
    this.snapshot = snap;
    this.logger.info({ path: this.path, keys: keys.length }, 'bundle file key set updated');
    this.listeners.emit(snap);
    return true;
  }
}
