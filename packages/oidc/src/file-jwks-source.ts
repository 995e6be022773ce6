import { readFile } from 'node:fs/promises';
import type { Clock, Logger } from '@ztwim/core';
import { invalidArgument } from '@ztwim/core';
import type { JsonWebKey } from './jwk.ts';
import { PollingJwksSource } from './polling-jwks-source.ts';

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
export class FileJwksSource extends PollingJwksSource {
  readonly path: string;
  protected readonly taskName = 'jwks_file_poll';
  private lastText: string | undefined;

  constructor(path: string, options: FileJwksSourceOptions = {}) {
    const intervalMs = options.pollIntervalMs ?? DEFAULT_FILE_POLL_INTERVAL_MS;
    if (!(intervalMs > 0)) throw invalidArgument('file: pollIntervalMs must be positive');
    super({ intervalMs, clock: options.clock, logger: options.logger });
    this.path = path;
  }

  protected async read(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      this.logger.warn({ path: this.path, err: (e as Error).message }, 'Cannot read bundle file');
      return false;
    }
    if (this.closed || text === this.lastText) return false;
    let keys: JsonWebKey[];
    try {
      keys = jwtAuthoritiesFromBundle(text);
    } catch (e) {
      this.logger.warn({ path: this.path, err: (e as Error).message }, 'Cannot parse bundle file');
      return false;
    }
    this.lastText = text;
    if (this.snapshot !== undefined && JSON.stringify(this.snapshot.keys) === JSON.stringify(keys)) return false;
    this.logger.info({ path: this.path, keys: keys.length }, 'Bundle file key set updated');
    this.publish(keys);
    return true;
  }
}
