/**
 * A minimal DER encoder: just the universal types X.509 certificates need. Every function
 * returns the complete TLV encoding, so values compose by nesting calls.
 */

/** Encodes tag, length and contents into a single new buffer (one allocation per element). */
export function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of contents) len += c.length;
  const lenLen = len < 0x80 ? 0 : len < 0x100 ? 1 : len < 0x10000 ? 2 : len < 0x1000000 ? 3 : 4;
  const out = Buffer.allocUnsafe(2 + lenLen + len);
  out[0] = tag;
  let p = 1;
  if (lenLen === 0) {
    out[p++] = len;
  } else {
    out[p++] = 0x80 | lenLen;
    for (let i = lenLen - 1; i >= 0; i--) out[p++] = (len >>> (8 * i)) & 0xff;
  }
  for (const c of contents) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

export const seq = (...items: Uint8Array[]): Buffer => tlv(0x30, ...items);
export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, ...items);
export const octetString = (b: Uint8Array): Buffer => tlv(0x04, b);
export const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const printableString = (s: string): Buffer => tlv(0x13, Buffer.from(s, 'latin1'));
export const ia5String = (s: string): Buffer => tlv(0x16, Buffer.from(s, 'latin1'));
export const NULL = Buffer.from([0x05, 0x00]);
export const TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** BIT STRING with the given number of unused trailing bits in the last byte. */
export function bitString(b: Uint8Array, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.from([unusedBits]), b);
}

/** [n] EXPLICIT (constructed context tag) around an encoded value. */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
/** [n] IMPLICIT primitive context tag with raw content bytes. */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);

const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const [a0 = 0n, a1 = 0n, ...rest] = arcs;
  const out: number[] = [];
  for (const arc of [a0 * 40n + a1, ...rest]) {
    const chunk: number[] = [];
    let v = arc;
    do {
      chunk.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i] = (chunk[i] as number) | 0x80;
    out.push(...chunk);
  }
  const enc = tlv(0x06, Buffer.from(out));
  oidCache.set(dotted, enc);
  return enc;
}

/** INTEGER from a non-negative bigint (minimal two's-complement encoding). */
export function integer(v: bigint): Buffer {
  if (v < 0n) throw new RangeError('der: negative integers are not supported');
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5); whole seconds, UTC. */
export function time(d: Date): Buffer {
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError('der: year out of range');
  const rest = pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) + pad2(d.getUTCHours()) + pad2(d.getUTCMinutes()) + pad2(d.getUTCSeconds());
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${pad2(year % 100)}${rest}Z`, 'latin1'));
  return tlv(0x18, Buffer.from(`${String(year).padStart(4, '0')}${rest}Z`, 'latin1'));
}
