/**
 * The CA journal: the CA manager's slots and published bundle, kept in the datastore (SPIRE's
 * `manager/journal.go`: `ds.SetCAJournal` / `FetchCAJournal`), beside the bundle the CA publishes
 * there: one durable store for the server's state. Before the journal moved into the datastore it
 * was `ca-journal.json` in the data dir; that file is read once, when the datastore has none yet.
 */
import type { JsonWebKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { internal } from '@ztwim/core';
import type { DataStore } from '../datastore/datastore.ts';
import type { SlotName } from './slot.ts';

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

/** The journal's name in the datastore. */
export const CA_JOURNAL_NAME = 'server-ca';
/** The file the journal lived in before it moved into the datastore (in the server's data dir). */
export const LEGACY_JOURNAL_FILE = 'ca-journal.json';

export interface JournalOptions {
  readonly store: Pick<DataStore, 'getCaJournal' | 'setCaJournal'>;
  /** Default CA_JOURNAL_NAME. */
  readonly name?: string;
  /** A journal file of an older version, read when the datastore has none. */
  readonly legacyFile?: string;
}

/** The CA journal: one JSON document in the datastore, replaced on every change. */
export class Journal {
  readonly #store: JournalOptions['store'];
  readonly #name: string;
  readonly #legacyFile: string | undefined;

  constructor(opts: JournalOptions) {
    this.#store = opts.store;
    this.#name = opts.name ?? CA_JOURNAL_NAME;
    this.#legacyFile = opts.legacyFile;
  }

  async load(): Promise<JournalState | undefined> {
    const where = `journal "${this.#name}" in the datastore`;
    let data: Uint8Array | null;
    try {
      data = await this.#store.getCaJournal(this.#name);
    } catch (cause) {
      throw internal(`ca: reading the ${where} failed: ${(cause as Error).message}`, { cause });
    }
    if (data !== null) return parseState(Buffer.from(data).toString('utf8'), where);
    if (this.#legacyFile === undefined) return undefined;
    let text: string;
    try {
      text = await readFile(this.#legacyFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw internal(`ca: reading journal ${this.#legacyFile} failed: ${(e as Error).message}`, { cause: e });
    }
    return parseState(text, `journal ${this.#legacyFile}`);
  }

  async save(state: JournalState): Promise<void> {
    try {
      await this.#store.setCaJournal(this.#name, new TextEncoder().encode(JSON.stringify(state)));
    } catch (cause) {
      throw internal(`ca: writing the journal "${this.#name}" to the datastore failed: ${(cause as Error).message}`, { cause });
    }
  }
}

function parseState(text: string, where: string): JournalState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw internal(`ca: ${where} is corrupt: not JSON`, { cause });
  }
  const problem = checkState(parsed);
  if (problem) throw internal(`ca: ${where} is corrupt: ${problem}`);
  return parsed as JournalState;
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
