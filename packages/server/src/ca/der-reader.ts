/**
 * A strict, bounds-checked DER reader. It never reads past the given limit, accepts only
 * definite minimal lengths and low tag numbers, and throws DerError on anything else.
 */
export class DerError extends Error {
  override readonly name = 'DerError';
}

export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly valueStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

export function readTlv(buf: Uint8Array, pos: number, limit = buf.length): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated element header');
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported');
  let first = buf[pos + 1] as number;
  let p = pos + 2;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('element too long');
    if (p + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    first = buf[p] as number;
    if (first === 0 || len < 0x80) throw new DerError('non-minimal length encoding');
    p += n;
  }
  if (p + len > limit) throw new DerError('element runs past its container');
  return { tag, start: pos, valueStart: p, end: p + len };
}

/** Reads the element at pos and checks its tag. */
export function expect(buf: Uint8Array, pos: number, limit: number, tag: number, what: string): Tlv {
  const t = readTlv(buf, pos, limit);
  if (t.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

/** The direct children of a constructed element. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.valueStart; p < parent.end; ) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

export const bytesOf = (buf: Uint8Array, t: Tlv): Buffer => Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);
export const valueOf = (buf: Uint8Array, t: Tlv): Buffer => Buffer.from(buf.buffer, buf.byteOffset + t.valueStart, t.end - t.valueStart);

/** Decodes an OBJECT IDENTIFIER element's value to dotted form. */
export function readOid(buf: Uint8Array, t: Tlv): string {
  if (t.tag !== 0x06) throw new DerError('expected an object identifier');
  const v = valueOf(buf, t);
  if (v.length === 0) throw new DerError('empty object identifier');
  const arcs: bigint[] = [];
  let cur = 0n;
  let fresh = true;
  for (const b of v) {
    if (fresh && b === 0x80) throw new DerError('non-minimal object identifier arc');
    cur = (cur << 7n) | BigInt(b & 0x7f);
    fresh = false;
    if ((b & 0x80) === 0) {
      arcs.push(cur);
      cur = 0n;
      fresh = true;
    }
  }
  if (!fresh) throw new DerError('truncated object identifier');
  const [first = 0n, ...rest] = arcs;
  const a0 = first < 40n ? 0n : first < 80n ? 1n : 2n;
  return [a0, first - a0 * 40n, ...rest].join('.');
}
