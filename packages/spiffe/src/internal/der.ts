/**
 * A minimal, strict DER reader: definite lengths only, minimal length encoding, single-byte
 * tags (every tag X.509 uses). Every failure is a DerError, which callers turn into a SpiffeError.
 */
export class DerError extends Error {}

export interface Tlv {
  /** The full identifier octet (class, constructed bit and tag number). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly valueStart: number;
  /** Offset just past the last content octet. */
  readonly end: number;
}

export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_OID = 0x06;
export const TAG_UTC_TIME = 0x17;
export const TAG_GENERALIZED_TIME = 0x18;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;

/** Reads one TLV starting at `offset`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset >= limit) throw new DerError('unexpected end of data');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  if (offset + 1 >= limit) throw new DerError('truncated length');
  const first = buf[offset + 1] as number;
  let len: number;
  let valueStart: number;
  if (first < 0x80) {
    len = first;
    valueStart = offset + 2;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not allowed in DER');
    if (n > 4) throw new DerError('length too large');
    if (offset + 2 + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    if ((buf[offset + 2] as number) === 0) throw new DerError('non-minimal length encoding');
    if (len < 0x80) throw new DerError('non-minimal length encoding');
    valueStart = offset + 2 + n;
  }
  const end = valueStart + len;
  if (end > limit) throw new DerError('truncated value');
  return { tag, start: offset, valueStart, end };
}

/** Reads the children of a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  if ((parent.tag & 0x20) === 0) throw new DerError('expected a constructed value');
  const out: Tlv[] = [];
  let p = parent.valueStart;
  while (p < parent.end) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined) throw new DerError(`missing ${what}`);
  if (t.tag !== tag) throw new DerError(`unexpected tag for ${what}`);
  return t;
}

export function value(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.valueStart, t.end);
}

export function raw(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.start, t.end);
}

export function readOid(buf: Uint8Array, t: Tlv): string {
  const v = value(buf, t);
  if (v.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let acc = 0;
  let started = false;
  for (let i = 0; i < v.length; i++) {
    const b = v[i] as number;
    if (!started && b === 0x80) throw new DerError('non-minimal OID encoding');
    started = true;
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID component too large');
    if ((b & 0x80) === 0) {
      parts.push(acc);
      acc = 0;
      started = false;
    }
  }
  if (started) throw new DerError('truncated OID');
  const first = parts[0] as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...parts.slice(1)].join('.');
}

export function readBoolean(buf: Uint8Array, t: Tlv): boolean {
  const v = value(buf, t);
  if (t.tag !== TAG_BOOLEAN || v.length !== 1) throw new DerError('invalid BOOLEAN');
  if (v[0] === 0xff) return true;
  if (v[0] === 0x00) return false;
  throw new DerError('non-DER BOOLEAN');
}

/** Reads a non-negative INTEGER that fits in a safe JS number. */
export function readSmallUint(buf: Uint8Array, t: Tlv): number {
  const v = value(buf, t);
  if (t.tag !== TAG_INTEGER || v.length === 0) throw new DerError('invalid INTEGER');
  if (((v[0] as number) & 0x80) !== 0) throw new DerError('negative INTEGER');
  if (v.length > 1 && v[0] === 0 && ((v[1] as number) & 0x80) === 0) throw new DerError('non-minimal INTEGER');
  if (v.length > 7) throw new DerError('INTEGER too large');
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

/** Reads a UTCTime or GeneralizedTime in the RFC 5280 profile (`...Z`, seconds, no fractions). */
export function readTime(buf: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(value(buf, t)).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === TAG_UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (m === null) throw new DerError('invalid UTCTime');
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === TAG_GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (m === null) throw new DerError('invalid GeneralizedTime');
    year = Number(m[1]);
  } else {
    throw new DerError('invalid time');
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const date = new Date(ms);
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59 || date.getUTCDate() !== d || date.getUTCMonth() !== mo - 1) {
    throw new DerError('invalid time value');
  }
  if (year < 100) date.setUTCFullYear(year);
  return date;
}
