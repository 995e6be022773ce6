/**
 * HPACK (RFC 7541) for the SDK's HTTP/2 client (h2-connection.ts): a decoder for the server's
 * header blocks (static and dynamic table, Huffman strings, table size updates) and an encoder
 * of request header blocks from literals without indexing (no dynamic table state on the
 * encoding side, so a block can be built once and sent on any connection).
 *
 * The SDK's own small copy (it depends on none of the project's other packages; @ztwim/proto has
 * the server side's). npm's `hpack.js` (2.1.6, last release 2017, built on readable-stream 2
 * wrappers) and `hpack` (1.0.0, 2016) do not fit a dependency-free client that decodes a block
 * into a few fields.
 */
import { SpiffeError } from '../errors.ts';

/** A malformed header block (an HTTP/2 COMPRESSION_ERROR of the connection). */
export class HpackError extends SpiffeError {
  constructor(message: string) {
    super('ERR_WORKLOAD_API', `hpack: ${message}`);
  }
}

/** RFC 7541 Appendix A. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** RFC 7541 Appendix B: the code length of symbols 0..255 and EOS (256). */
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11,
  10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7,
  8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23,
  22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23,
  23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26,
  27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27,
  27, 27, 26, 30,
];

const EOS = 256;
const MAX_CODE_LENGTH = 30;

/**
 * Canonical Huffman decoding tables: per code length, the first code of that length, where its
 * symbols start in `symbols`, and how many there are (RFC 7541's code is canonical, so the
 * lengths alone give every code).
 */
const FIRST_CODE = new Int32Array(MAX_CODE_LENGTH + 1);
const FIRST_INDEX = new Int32Array(MAX_CODE_LENGTH + 1);
const COUNT = new Int32Array(MAX_CODE_LENGTH + 1);
const SYMBOLS = new Uint16Array(HUFFMAN_LENGTHS.length);
{
  for (const len of HUFFMAN_LENGTHS) COUNT[len] = (COUNT[len] as number) + 1;
  let code = 0;
  let index = 0;
  for (let len = 1; len <= MAX_CODE_LENGTH; len++) {
    FIRST_CODE[len] = code;
    FIRST_INDEX[len] = index;
    for (let sym = 0; sym < HUFFMAN_LENGTHS.length; sym++) {
      if (HUFFMAN_LENGTHS[sym] !== len) continue;
      code++;
      SYMBOLS[index++] = sym;
    }
    code <<= 1;
  }
}

/** Decodes a Huffman-coded string (latin1: header octets one char each). */
export function huffmanDecode(src: Uint8Array): string {
  let out = '';
  let code = 0;
  let len = 0;
  for (let i = 0; i < src.length; i++) {
    const byte = src[i] as number;
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      const offset = code - (FIRST_CODE[len] as number);
      if (offset >= 0 && offset < (COUNT[len] as number)) {
        const sym = SYMBOLS[(FIRST_INDEX[len] as number) + offset] as number;
        if (sym === EOS) throw new HpackError('EOS in a Huffman string');
        out += String.fromCharCode(sym);
        code = 0;
        len = 0;
      } else if (len >= MAX_CODE_LENGTH) {
        throw new HpackError('invalid Huffman code');
      }
    }
  }
  // Padding: at most 7 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== (1 << len) - 1) throw new HpackError('invalid Huffman padding');
  return out;
}

/** An integer with an N-bit prefix (RFC 7541 5.1) at `at.pos`, which moves past it. */
function decodeInteger(buf: Uint8Array, at: { pos: number }, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (at.pos >= buf.length) throw new HpackError('truncated integer');
  let value = (buf[at.pos++] as number) & max;
  if (value < max) return value;
  let shift = 0;
  for (;;) {
    if (at.pos >= buf.length) throw new HpackError('truncated integer');
    const b = buf[at.pos++] as number;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (value > 0xffffffff) throw new HpackError('integer overflow');
    if ((b & 0x80) === 0) return value;
  }
}

function decodeString(buf: Uint8Array, at: { pos: number }): string {
  if (at.pos >= buf.length) throw new HpackError('truncated string');
  const huffman = ((buf[at.pos] as number) & 0x80) !== 0;
  const len = decodeInteger(buf, at, 7);
  const end = at.pos + len;
  if (end > buf.length) throw new HpackError('truncated string');
  const raw = buf.subarray(at.pos, end);
  at.pos = end;
  return huffman ? huffmanDecode(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('latin1');
}

/** RFC 7541 4.1: an entry's size is its name and value octets plus 32. */
const ENTRY_OVERHEAD = 32;

type Field = readonly [name: string, value: string];

/** Decoded header fields: the first value of each name (gRPC's response headers have one each). */
export type HeaderMap = Record<string, string>;

/** Decodes the header blocks of one connection's server side, in order, keeping its dynamic table. */
export class HpackDecoder {
  /** Newest entry first. */
  #entries: Field[] = [];
  #size = 0;
  #maxSize: number;
  /** The most the peer may set the table to: our SETTINGS_HEADER_TABLE_SIZE. */
  readonly #limit: number;

  constructor(limit = 4096) {
    this.#limit = limit;
    this.#maxSize = limit;
  }

  /** Decodes a whole block (a HEADERS fragment and its CONTINUATIONs, joined). */
  decode(block: Uint8Array): HeaderMap {
    const out: HeaderMap = Object.create(null) as HeaderMap;
    const at = { pos: 0 };
    let fieldSeen = false;
    while (at.pos < block.length) {
      const b = block[at.pos] as number;
      let field: Field;
      if (b & 0x80) {
        field = this.#get(decodeInteger(block, at, 7));
      } else if ((b & 0xe0) === 0x20) {
        // A size update must come first in a block (RFC 7541 4.2).
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const size = decodeInteger(block, at, 5);
        if (size > this.#limit) throw new HpackError(`dynamic table size update to ${size}, above the ${this.#limit} allowed`);
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else {
        const incremental = (b & 0xc0) === 0x40;
        const nameIndex = decodeInteger(block, at, incremental ? 6 : 4);
        const name = nameIndex === 0 ? decodeString(block, at) : this.#get(nameIndex)[0];
        field = [name, decodeString(block, at)];
        if (incremental) this.#add(field);
      }
      fieldSeen = true;
      if (out[field[0]] === undefined) out[field[0]] = field[1];
    }
    return out;
  }

  #get(index: number): Field {
    if (index >= 1 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] as Field;
    const field = this.#entries[index - STATIC_TABLE.length - 1];
    if (field === undefined) throw new HpackError(`invalid table index ${index}`);
    return field;
  }

  #add(field: Field): void {
    const size = field[0].length + field[1].length + ENTRY_OVERHEAD;
    this.#evict(size);
    // An entry larger than the table empties it and is not added (RFC 7541 4.4).
    if (size > this.#maxSize) return;
    this.#entries.unshift(field);
    this.#size += size;
  }

  #evict(room: number): void {
    while (this.#size + room > this.#maxSize && this.#entries.length > 0) {
      const e = this.#entries.pop() as Field;
      this.#size -= e[0].length + e[1].length + ENTRY_OVERHEAD;
    }
  }
}

/** Static table indexes of names, and of whole fields (`name\0value`). */
const STATIC_NAME = new Map<string, number>();
const STATIC_FIELD = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
  STATIC_FIELD.set(`${name}\0${value}`, i + 1);
});

function encodeInteger(out: number[], value: number, prefixBits: number, flags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function encodeLiteral(out: number[], s: string): void {
  const bytes = Buffer.from(s, 'latin1');
  encodeInteger(out, bytes.length, 7, 0);
  for (const b of bytes) out.push(b);
}

/**
 * A request header block: a field of the static table as its index, every other one a literal
 * without indexing (its name indexed when the static table has it). Names must be lowercase.
 */
export function encodeHeaderBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const full = STATIC_FIELD.get(`${name}\0${value}`);
    if (full !== undefined) {
      encodeInteger(out, full, 7, 0x80);
      continue;
    }
    const nameIndex = STATIC_NAME.get(name);
    encodeInteger(out, nameIndex ?? 0, 4, 0);
    if (nameIndex === undefined) encodeLiteral(out, name);
    encodeLiteral(out, value);
  }
  return Buffer.from(out);
}
