import type { JsonWebKey } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { internal } from '@ztwim/core';
import { atomicWriteFile } from '@ztwim/core';

export type SlotName = 'A' | 'B';

export interface X509SlotRecord {
  readonly slot: SlotName;
  readonly keyId: string;
  /** Base64 DER: [CA cert, ...upstream intermediates]. */
  readonly chain: readonly string[];
}

export interface JwtSlotRecord {
  readonly slot: SlotName;
  readonly keyId: string;
  readonly kid: string;
  readonly issuedAt: string;
  readonly notAfter: string;
}

export interface BundleRecord {
  readonly sequence: number;
  readonly x509: ReadonlyArray<{ readonly der: string; readonly notAfter: string }>;
  readonly jwt: ReadonlyArray<{ readonly kid: string; readonly jwk: JsonWebKey; readonly expiresAt: string }>;
}

/** What the CA manager keeps across restarts: the slots and the published bundle. */
export interface JournalState {
  readonly version: 1;
  readonly x509: { readonly current?: X509SlotRecord; readonly next?: X509SlotRecord };
  readonly jwt: { readonly current?: JwtSlotRecord; readonly next?: JwtSlotRecord };
  readonly bundle: BundleRecord;
}

const FILE = 'ca-journal.json';

/** The CA journal: one JSON file in the data dir, replaced atomically on every change. */
export class Journal {
  readonly path: string;
  private readonly dir: string;

  constructor(config: { readonly dataDir: string }) {
    this.dir = config.dataDir;
    this.path = join(config.dataDir, FILE);
  }

  async load(): Promise<JournalState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw internal(`ca: reading journal ${this.path} failed: ${(e as Error).message}`, { cause: e });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw internal(`ca: journal ${this.path} is corrupt: not JSON`, { cause });
    }
    const problem = checkState(parsed);
    if (problem) throw internal(`ca: journal ${this.path} is corrupt: ${problem}`);
    return parsed as JournalState;
  }

  async save(state: JournalState): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await atomicWriteFile(this.path, `${JSON.stringify(state, null, 2)}\n`, 0o600);
    } catch (cause) {
      throw internal(`ca: writing journal ${this.path} failed: ${(cause as Error).message}`, { cause });
    }
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isDate = (v: unknown): boolean => isStr(v) && !Number.isNaN(Date.parse(v));
const isSlot = (v: unknown): boolean => v === 'A' || v === 'B';

function checkState(v: unknown): string | undefined {
  if (!isObj(v) || v.version !== 1) return 'unknown version';
  if (!isObj(v.x509) || !isObj(v.jwt) || !isObj(v.bundle)) return 'missing section';
  for (const k of ['current', 'next'] as const) {
    const x = v.x509[k];
    if (x !== undefined && !(isObj(x) && isSlot(x.slot) && isStr(x.keyId) && Array.isArray(x.chain) && x.chain.length > 0 && x.chain.every(isStr))) {
      return `bad x509.${k}`;
    }
    const j = v.jwt[k];
    if (j !== undefined && !(isObj(j) && isSlot(j.slot) && isStr(j.keyId) && isStr(j.kid) && isDate(j.issuedAt) && isDate(j.notAfter))) {
      return `bad jwt.${k}`;
    }
  }
  const b = v.bundle;
  if (typeof b.sequence !== 'number' || !Array.isArray(b.x509) || !Array.isArray(b.jwt)) return 'bad bundle';
  if (!b.x509.every((e) => isObj(e) && isStr(e.der) && isDate(e.notAfter))) return 'bad bundle.x509 entry';
  if (!b.jwt.every((e) => isObj(e) && isStr(e.kid) && isObj(e.jwk) && isDate(e.expiresAt))) return 'bad bundle.jwt entry';
  return undefined;
}
