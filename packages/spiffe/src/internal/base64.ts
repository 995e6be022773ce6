import { SpiffeError, type SpiffeErrorCode } from '../errors.ts';

const STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const URL = /^[A-Za-z0-9_-]*$/;

/** Strict standard base64 (padded, no whitespace, canonical trailing bits). */
export function decodeStdBase64(s: string, code: SpiffeErrorCode, message: string): Uint8Array {
  if (!STD.test(s)) throw new SpiffeError(code, message);
  const out = new Uint8Array(Buffer.from(s, 'base64'));
  if (Buffer.from(out).toString('base64') !== s) throw new SpiffeError(code, message);
  return out;
}

/** Strict unpadded base64url with canonical trailing bits. */
export function decodeBase64Url(s: string, code: SpiffeErrorCode, message: string): Uint8Array {
  if (!URL.test(s) || s.length % 4 === 1) throw new SpiffeError(code, message);
  const out = new Uint8Array(Buffer.from(s, 'base64url'));
  if (Buffer.from(out).toString('base64url') !== s) throw new SpiffeError(code, message);
  return out;
}

export function encodeStdBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
