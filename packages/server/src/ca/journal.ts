/**
 * The CA journal: the CA manager's slots and published bundle, kept in the datastore (SPIRE's
 * `manager/journal.go`: `ds.SetCAJournal` / `FetchCAJournal`), beside the bundle the CA publishes
 * there: one durable store for the server's state. Before the journal moved into the datastore it
 * was `ca-journal.json` in the data dir; that file is read once, when the datastore has none yet.
 *
 * Several servers share one datastore (docs/ha.md), each with its own CA, so each has its own
 * journal, named after the X.509 CA key it signs with (as SPIRE finds its journal by the active
 * X.509 authority ID held in its own KeyManager): `server-ca/<key ID>`. A server finds its journal
 * by the CA keys in its key manager; one that has none of them starts afresh.
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
  readonly x509: { readonly current?: X509SlotRecord; readonly next?: X509SlotRecord; readonly old?: X509SlotRecord };
  readonly jwt: { readonly current?: JwtSlotRecord; readonly next?: JwtSlotRecord; readonly old?: JwtSlotRecord };
  readonly bundle: BundleRecord;
  /** When the state was saved (ms); picks the newer of two journals a server finds for its keys. */
  readonly savedAtMs?: number;
}

/** The journal's name in the datastore before it was kept per server; read once, when a server has no journal of its own. */
export const CA_JOURNAL_NAME = 'server-ca';

/** The name of the journal of the server whose active X.509 CA key has this key ID (hex SKI). */
export const journalNameFor = (authorityId: string): string => `${CA_JOURNAL_NAME}/${authorityId}`;
/** The file the journal lived in before it moved into the datastore (in the server's data dir). */
export const LEGACY_JOURNAL_FILE = 'ca-journal.json';

export interface JournalOptions {
  readonly store: Pick<DataStore, 'getCaJournal' | 'setCaJournal'>;
  /** A journal file of an older version, read when the datastore has none. */
  readonly legacyFile?: string;
}

/** The CA journal: one JSON document per server in the datastore, replaced on every change. */
export class Journal {
  readonly #store: JournalOptions['store'];
  readonly #legacyFile: string | undefined;

  constructor(opts: JournalOptions) {
    this.#store = opts.store;
    this.#legacyFile = opts.legacyFile;
  }

  /**
   * This server's journal: the newest of those named after `authorityIds` (the key IDs of the CA
   * keys in its key manager); without one, the shared journal of an older version, then the file.
   * A journal of an older version may hold another server's slots: restoring a slot checks that
   * its key is in this server's key manager, so another server's CA is never taken over.
   */
  async load(authorityIds: readonly string[] = []): Promise<JournalState | undefined> {
    let found: JournalState | undefined;
    for (const id of authorityIds) {
      const state = await this.#read(journalNameFor(id));
      if (state !== undefined && (found === undefined || (state.savedAtMs ?? 0) > (found.savedAtMs ?? 0))) found = state;
    }
    if (found !== undefined) return found;
    const shared = await this.#read(CA_JOURNAL_NAME);
    if (shared !== undefined) return shared;
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

  /** Saves the state as the journal of the server whose active X.509 CA key has `authorityId`. */
  async save(authorityId: string, state: JournalState): Promise<void> {
    const name = journalNameFor(authorityId);
    try {
      await this.#store.setCaJournal(name, new TextEncoder().encode(JSON.stringify(state)));
    } catch (cause) {
      throw internal(`ca: writing the journal "${name}" to the datastore failed: ${(cause as Error).message}`, { cause });
    }
  }

  async #read(name: string): Promise<JournalState | undefined> {
    const where = `journal "${name}" in the datastore`;
    let data: Uint8Array | null;
    try {
      data = await this.#store.getCaJournal(name);
    } catch (cause) {
      throw internal(`ca: reading the ${where} failed: ${(cause as Error).message}`, { cause });
    }
    return data === null ? undefined : parseState(Buffer.from(data).toString('utf8'), where);
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
  for (const k of ['current', 'next', 'old'] as const) {
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
