// The agent's data dir (SPIRE pkg/agent/storage): its SVID and key and the last trust bundle, so a
// restart resumes without attesting again. Written with @ztwim/core's fsync'd atomicWriteFile.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFile, internal } from '@ztwim/core';
import { concatDer, X509Svid, type TrustDomain } from '@ztwim/spiffe';

const DATA_FILE = 'agent-data.json';
const KEY_FILE = 'agent-svid.key';

/** The agent's own SVID (key included) and whether the server lets it attest again. */
export interface AgentCredentials {
  readonly svid: X509Svid;
  readonly reattestable: boolean;
}

/** What agent-data.json holds (base64 DER certificates); `id` and `expiresAt` are informative only. */
interface AgentDataFile {
  svid: string[];
  bundle: string[];
  reattestable: boolean;
  expiresAt: number;
  id: string;
}

/** A data dir that exists but cannot be used: which file and why. */
export interface CorruptData {
  readonly file: string;
  readonly reason: string;
}

export type LoadedData = { readonly creds: AgentCredentials; readonly roots: Uint8Array[] } | CorruptData | undefined;

function parseCert(b64: unknown, what: string): Uint8Array {
  if (typeof b64 !== 'string' || b64 === '') throw internal(`${what} is not a base64 string`);
  const der = Buffer.from(b64, 'base64');
  try {
    new crypto.X509Certificate(der);
  } catch {
    throw internal(`${what} is not an X.509 certificate`);
  }
  return new Uint8Array(der);
}

/**
 * Reads the stored agent SVID, key and bundle. Every part is checked (certificates parse, the
 * SVID passes the SDK's X509-SVID rules in the trust domain, the key is the SVID's key) so that a
 * damaged or tampered data dir is reported, never used. The SPIFFE ID comes from the certificate.
 */
export function loadData(dir: string, trustDomain: TrustDomain): LoadedData {
  const dataFile = path.join(dir, DATA_FILE);
  const keyFile = path.join(dir, KEY_FILE);
  if (!fs.existsSync(dataFile)) return undefined;
  let d: AgentDataFile;
  let chain: Uint8Array[];
  let roots: Uint8Array[];
  try {
    d = JSON.parse(fs.readFileSync(dataFile, 'utf8')) as AgentDataFile;
    if (typeof d !== 'object' || d === null) throw internal('not a JSON object');
    if (!Array.isArray(d.svid) || d.svid.length === 0) throw internal('"svid" is missing or empty');
    if (!Array.isArray(d.bundle) || d.bundle.length === 0) throw internal('"bundle" is missing or empty');
    chain = d.svid.map((b, i) => parseCert(b, `svid[${i}]`));
    roots = d.bundle.map((b, i) => parseCert(b, `bundle[${i}]`));
  } catch (err) {
    return { file: dataFile, reason: err instanceof Error ? err.message : String(err) };
  }
  const notAgentSvid: CorruptData = { file: dataFile, reason: `svid[0] is not an agent SVID of trust domain ${trustDomain.name}` };
  let key: Buffer;
  try {
    key = fs.readFileSync(keyFile);
  } catch (err) {
    return { file: keyFile, reason: `cannot read a PKCS#8 private key: ${(err as Error).message}` };
  }
  let svid: X509Svid;
  try {
    svid = X509Svid.parseRaw(concatDer(chain), new Uint8Array(key));
  } catch (err) {
    const reason = (err as Error).message;
    if (/private key validation/.test(reason)) return { file: keyFile, reason: 'the key does not belong to the stored agent SVID' };
    if (/private key/.test(reason)) return { file: keyFile, reason: `cannot read a PKCS#8 private key: ${reason}` };
    return notAgentSvid;
  }
  if (!svid.id.memberOf(trustDomain)) return notAgentSvid;
  return { creds: { svid, reattestable: d.reattestable === true }, roots };
}

/**
 * Stores the agent's SVID, key and bundle. Skips the write when nothing changed since the last
 * save to this dir (the agent saves after every sync); each file is replaced atomically and fsync'd.
 */
export class AgentDataStore {
  readonly #dir: string;
  #last: string | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  load(trustDomain: TrustDomain): LoadedData {
    return loadData(this.#dir, trustDomain);
  }

  async save(creds: AgentCredentials, roots: readonly Uint8Array[]): Promise<void> {
    const d: AgentDataFile = {
      svid: creds.svid.certificates.map((c) => Buffer.from(c).toString('base64')),
      bundle: roots.map((c) => Buffer.from(c).toString('base64')),
      reattestable: creds.reattestable,
      expiresAt: creds.svid.expiresAt().getTime(),
      id: creds.svid.id.toString(),
    };
    const json = JSON.stringify(d);
    if (json === this.#last) return;
    await fs.promises.mkdir(this.#dir, { recursive: true, mode: 0o700 });
    // The key first: a crash between the two writes leaves a new key beside the old SVID, which
    // loadData reports (and the agent re-attests), never a new SVID with the old key unnoticed.
    await atomicWriteFile(path.join(this.#dir, KEY_FILE), creds.svid.marshalRaw().privateKey, 0o600);
    await atomicWriteFile(path.join(this.#dir, DATA_FILE), json, 0o600);
    this.#last = json;
  }

  delete(): void {
    deleteAgentData(this.#dir);
    this.#last = undefined;
  }
}

/** Deletes the stored agent SVID and key: the next start attests again. */
export function deleteAgentData(dir: string): void {
  for (const f of [DATA_FILE, KEY_FILE]) fs.rmSync(path.join(dir, f), { force: true });
}

/** The SPIFFE ID of the agent SVID stored in `dir` (undefined when none, or unreadable). */
export function storedAgentId(dir: string): string | undefined {
  try {
    const d = JSON.parse(fs.readFileSync(path.join(dir, DATA_FILE), 'utf8')) as Partial<AgentDataFile>;
    return typeof d.id === 'string' && d.id !== '' ? d.id : undefined;
  } catch {
    return undefined;
  }
}
