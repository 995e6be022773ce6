import { SpiffeError } from '../errors.ts';
import { decodeStdBase64 } from './base64.ts';
import { DerError, readTlv } from './der.ts';

function pemError(message: string): SpiffeError {
  return new SpiffeError('ERR_PEM_INVALID', `pem: ${message}`);
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----$/;
const END = /^-----END ([A-Z0-9 ]+)-----$/;

/**
 * Decodes every PEM block of type `label` in `pem` to DER, in order. Text outside blocks and
 * blocks of other types are skipped (as go-spiffe's pemutil, so one file may hold both the
 * certificates and the key); a block with headers, bad base64 or an unterminated block is an
 * error. Whitespace-only input gives an empty list; other input without any block is an error.
 */
export function pemToDerList(pem: string, label = 'CERTIFICATE'): Uint8Array[] {
  if (typeof pem !== 'string') throw pemError('input must be a string');
  const lines = pem.split(/\r?\n/);
  const out: Uint8Array[] = [];
  let inBlock: string | undefined;
  let blocks = 0;
  let body: string[] = [];
  for (const rawLine of lines) {
    const line = rawLine.trim();
    if (inBlock === undefined) {
      const m = BEGIN.exec(line);
      if (m === null) continue;
      inBlock = m[1] as string;
      blocks++;
      body = [];
      continue;
    }
    const e = END.exec(line);
    if (e !== null) {
      if (e[1] !== inBlock) throw pemError(`mismatched END line for block type "${inBlock}"`);
      const b64 = body.join('');
      if (b64 === '') throw pemError(`empty "${inBlock}" block`);
      const der = decodeStdBase64(b64, 'ERR_PEM_INVALID', `pem: invalid base64 in "${inBlock}" block`);
      if (inBlock === label) out.push(der);
      inBlock = undefined;
      continue;
    }
    if (line.includes(':')) throw pemError('PEM headers are not supported');
    if (line.startsWith('-----')) throw pemError('unexpected PEM boundary');
    body.push(line);
  }
  if (inBlock !== undefined) throw pemError(`unterminated "${inBlock}" block`);
  if (blocks === 0 && pem.trim() !== '') throw pemError('no PEM blocks found');
  return out;
}

/** Encodes DER as one PEM block with 64-character lines and a trailing newline. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Splits concatenated DER values (Workload API chains and bundles) into the individual
 * values, checking that each is a complete, definite-length TLV. Empty input gives [].
 */
export function splitConcatenatedDer(buf: Uint8Array): Uint8Array[] {
  if (!(buf instanceof Uint8Array)) throw new SpiffeError('ERR_X509_INVALID', 'der: input must be a Uint8Array');
  const out: Uint8Array[] = [];
  let p = 0;
  while (p < buf.length) {
    let end: number;
    try {
      end = readTlv(buf, p).end;
    } catch (e) {
      if (e instanceof DerError) throw new SpiffeError('ERR_X509_INVALID', `der: ${e.message} at offset ${p}`);
      throw e;
    }
    out.push(buf.slice(p, end));
    p = end;
  }
  return out;
}

/** Concatenates DER values into one buffer (the inverse of splitConcatenatedDer). */
export function concatDer(list: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const d of list) n += d.length;
  const out = new Uint8Array(n);
  let p = 0;
  for (const d of list) {
    out.set(d, p);
    p += d.length;
  }
  return out;
}
