// HPACK (RFC 7541) header block decoding with a dynamic table, Huffman coding, and an encoder for
// the literal forms the authority rewrite emits (tests use it to play a client's encoder).
//
// Written here rather than taken from npm: the two HPACK packages there (`hpack.js` 2.1.6 and
// `hpack` 1.0.0) have had no release since 2017/2016 and are built for whole-header-list
// compress/decompress with their own stream wrappers; what is needed here is small: decode a
// block into fields (with the representation each came in) and encode literals.

/** One decoded header field; `value` is the exact octets (header values are not always UTF-8). */
export interface HeaderField {
  readonly name: string;
  readonly value: Uint8Array;
}

export class HpackError extends Error {
  override readonly name = 'HpackError';
}

// RFC 7541 Appendix A.
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
const STATIC_FIELDS: readonly HeaderField[] = STATIC_TABLE.map(([name, value]) => ({ name, value: Buffer.from(value, 'latin1') }));
export const STATIC_TABLE_LENGTH = STATIC_FIELDS.length;
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/** The first static table index with this name, if any. */
export function staticNameIndex(name: string): number | undefined {
  return STATIC_NAME_INDEX.get(name);
}

// RFC 7541 Appendix B: code length of symbols 0..255 and EOS (256). The code is canonical (codes
// of one length are consecutive, in symbol order, and each length starts where the last ended,
// shifted), so the lengths alone determine every code.
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

interface HuffmanTables {
  readonly codes: Uint32Array;
  /** Per code length: first code of that length, and where its symbols start in `symbols`. */
  readonly firstCode: Int32Array;
  readonly firstIndex: Int32Array;
  readonly count: Int32Array;
  readonly symbols: Uint16Array;
}

function buildHuffman(): HuffmanTables {
  const count = new Int32Array(MAX_CODE_LENGTH + 1);
  for (const len of HUFFMAN_LENGTHS) count[len]! += 1;
  const symbols = new Uint16Array(HUFFMAN_LENGTHS.length);
  const firstCode = new Int32Array(MAX_CODE_LENGTH + 1);
  const firstIndex = new Int32Array(MAX_CODE_LENGTH + 1);
  const codes = new Uint32Array(HUFFMAN_LENGTHS.length);
  let code = 0;
  let index = 0;
  for (let len = 1; len <= MAX_CODE_LENGTH; len++) {
    firstCode[len] = code;
    firstIndex[len] = index;
    for (let sym = 0; sym < HUFFMAN_LENGTHS.length; sym++) {
      if (HUFFMAN_LENGTHS[sym] !== len) continue;
      codes[sym] = code++;
      symbols[index++] = sym;
    }
    code <<= 1;
  }
  return { codes, firstCode, firstIndex, count, symbols };
}
const HUFFMAN = buildHuffman();

export function huffmanDecode(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of src) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      const offset = code - HUFFMAN.firstCode[len]!;
      if (offset >= 0 && offset < HUFFMAN.count[len]!) {
        const sym = HUFFMAN.symbols[HUFFMAN.firstIndex[len]! + offset]!;
        if (sym === EOS) throw new HpackError('hpack: EOS in huffman string');
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len >= MAX_CODE_LENGTH) {
        throw new HpackError('hpack: invalid huffman code');
      }
    }
  }
  // Padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== (1 << len) - 1) throw new HpackError('hpack: invalid huffman padding');
  return Uint8Array.from(out);
}

export function huffmanEncode(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const sym of src) {
    const len = HUFFMAN_LENGTHS[sym]!;
    const code = HUFFMAN.codes[sym]!;
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | ((code >>> i) & 1);
      if (++bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Uint8Array.from(out);
}

/** Integer with an N-bit prefix (RFC 7541 5.1) starting at `pos`; returns value and end. */
export function decodeInteger(buf: Uint8Array, pos: number, prefixBits: number): { value: number; end: number } {
  if (pos >= buf.length) throw new HpackError('hpack: truncated integer');
  const max = (1 << prefixBits) - 1;
  let value = buf[pos]! & max;
  let p = pos + 1;
  if (value < max) return { value, end: p };
  let shift = 0;
  for (;;) {
    if (p >= buf.length) throw new HpackError('hpack: truncated integer');
    const b = buf[p++]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (value > 0xffffffff) throw new HpackError('hpack: integer overflow');
    if ((b & 0x80) === 0) return { value, end: p };
  }
}

/** Appends an integer with an N-bit prefix; `firstByteFlags` fills the bits above the prefix. */
export function encodeInteger(out: number[], value: number, prefixBits: number, firstByteFlags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByteFlags | value);
    return;
  }
  out.push(firstByteFlags | max);
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

export function encodeString(out: number[], value: Uint8Array, huffman: boolean): void {
  const bytes = huffman ? huffmanEncode(value) : value;
  encodeInteger(out, bytes.length, 7, huffman ? 0x80 : 0);
  for (const b of bytes) out.push(b);
}

function decodeString(buf: Uint8Array, pos: number): { value: Uint8Array; end: number } {
  if (pos >= buf.length) throw new HpackError('hpack: truncated string');
  const huffman = (buf[pos]! & 0x80) !== 0;
  const { value: len, end } = decodeInteger(buf, pos, 7);
  if (end + len > buf.length) throw new HpackError('hpack: truncated string');
  const raw = buf.subarray(end, end + len);
  return { value: huffman ? huffmanDecode(raw) : Uint8Array.from(raw), end: end + len };
}

const ENTRY_OVERHEAD = 32;

/** The dynamic table (RFC 7541 2.3.2, 4): newest entry first, evicted by size. */
export class DynamicTable {
  #entries: HeaderField[] = [];
  #size = 0;
  #maxSize: number;

  constructor(maxSize = 4096) {
    this.#maxSize = maxSize;
  }

  get size(): number {
    return this.#size;
  }
  get maxSize(): number {
    return this.#maxSize;
  }
  get length(): number {
    return this.#entries.length;
  }

  setMaxSize(maxSize: number): void {
    this.#maxSize = maxSize;
    this.#evict(0);
  }

  add(field: HeaderField): void {
    const size = field.name.length + field.value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    // An entry larger than the table empties it and is not added (RFC 7541 4.4).
    if (size > this.#maxSize) return;
    this.#entries.unshift(field);
    this.#size += size;
  }

  /** Index in the combined address space (1-based: static table first). */
  get(index: number): HeaderField {
    if (index >= 1 && index <= STATIC_TABLE_LENGTH) return STATIC_FIELDS[index - 1]!;
    const field = this.#entries[index - STATIC_TABLE_LENGTH - 1];
    if (index < 1 || field === undefined) throw new HpackError(`hpack: invalid index ${index}`);
    return field;
  }

  #evict(room: number): void {
    while (this.#size + room > this.#maxSize && this.#entries.length > 0) {
      const e = this.#entries.pop()!;
      this.#size -= e.name.length + e.value.length + ENTRY_OVERHEAD;
    }
  }
}

export type Representation = 'indexed' | 'incremental' | 'without-indexing' | 'never-indexed' | 'size-update';

/** One representation in a block. */
export interface DecodedRepresentation {
  readonly kind: Representation;
  /** The field as it enters the header list (undefined for size updates). */
  readonly field: HeaderField | undefined;
}

/** Decodes the header blocks of one direction of a connection, in order, keeping the dynamic table. */
export class HpackDecoder {
  readonly table: DynamicTable;

  constructor(maxTableSize = 4096) {
    this.table = new DynamicTable(maxTableSize);
  }

  /** Decodes a whole block (HEADERS fragment and its CONTINUATIONs, joined). */
  decode(block: Uint8Array): DecodedRepresentation[] {
    const reps: DecodedRepresentation[] = [];
    let pos = 0;
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const { value: index, end } = decodeInteger(block, pos, 7);
        if (index === 0) throw new HpackError('hpack: index 0');
        reps.push({ kind: 'indexed', field: this.table.get(index) });
        pos = end;
        continue;
      }
      if ((b & 0xe0) === 0x20) {
        const { value: size, end } = decodeInteger(block, pos, 5);
        this.table.setMaxSize(size);
        reps.push({ kind: 'size-update', field: undefined });
        pos = end;
        continue;
      }
      const kind: Representation = (b & 0xc0) === 0x40 ? 'incremental' : (b & 0xf0) === 0x10 ? 'never-indexed' : 'without-indexing';
      const { value: nameIndex, end: afterIndex } = decodeInteger(block, pos, kind === 'incremental' ? 6 : 4);
      let name: string;
      let p = afterIndex;
      if (nameIndex === 0) {
        const n = decodeString(block, p);
        name = Buffer.from(n.value).toString('latin1');
        p = n.end;
      } else {
        name = this.table.get(nameIndex).name;
      }
      const v = decodeString(block, p);
      const field: HeaderField = { name, value: v.value };
      if (kind === 'incremental') this.table.add(field);
      reps.push({ kind, field });
      pos = v.end;
    }
    return reps;
  }
}

/** How a test client (or the rewrite) encodes one field. */
export interface EncodeField {
  readonly name: string;
  readonly value: string | Uint8Array;
  /**
   * Default 'without-indexing'. 'indexed' needs the exact field in the table (static or dynamic);
   * 'indexed-or-incremental' is indexed when the field is in the table at that point of the block.
   */
  readonly kind?: Exclude<Representation, 'size-update'> | 'indexed-or-incremental';
  readonly huffman?: boolean;
  /** Reference the name by its table index when it has one (default true). */
  readonly indexName?: boolean;
}

/** An HPACK encoder for the forms above, keeping its own dynamic table (a client's view). */
export class HpackEncoder {
  readonly table = new DynamicTable();

  /** Encodes fields into one block; `sizeUpdates` are emitted first, as RFC 7541 4.2 requires. */
  encode(fields: readonly EncodeField[], sizeUpdates: readonly number[] = []): Uint8Array {
    const out: number[] = [];
    for (const size of sizeUpdates) {
      encodeInteger(out, size, 5, 0x20);
      this.table.setMaxSize(size);
    }
    for (const f of fields) {
      const value = typeof f.value === 'string' ? Buffer.from(f.value, 'latin1') : f.value;
      let kind = f.kind ?? 'without-indexing';
      if (kind === 'indexed-or-incremental') kind = this.#find(f.name, value, true) === undefined ? 'incremental' : 'indexed';
      if (kind === 'indexed') {
        const index = this.#find(f.name, value, true);
        if (index === undefined) throw new HpackError(`hpack: ${f.name} is not in the table`);
        encodeInteger(out, index, 7, 0x80);
        continue;
      }
      const nameIndex = f.indexName === false ? undefined : this.#find(f.name, value, false);
      const [prefix, flags] = kind === 'incremental' ? [6, 0x40] : kind === 'never-indexed' ? [4, 0x10] : [4, 0];
      encodeInteger(out, nameIndex ?? 0, prefix, flags);
      if (nameIndex === undefined) encodeString(out, Buffer.from(f.name, 'latin1'), f.huffman ?? false);
      encodeString(out, value, f.huffman ?? false);
      if (kind === 'incremental') this.table.add({ name: f.name, value });
    }
    return Uint8Array.from(out);
  }

  /** Index of the exact field in the static or dynamic table, if there. */
  indexOf(name: string, value: string | Uint8Array): number | undefined {
    return this.#find(name, typeof value === 'string' ? Buffer.from(value, 'latin1') : value, true);
  }

  #find(name: string, value: Uint8Array, wholeField: boolean): number | undefined {
    const total = STATIC_TABLE_LENGTH + this.table.length;
    for (let i = 1; i <= total; i++) {
      const f = this.table.get(i);
      if (f.name !== name) continue;
      if (!wholeField || Buffer.from(f.value).equals(Buffer.from(value))) return i;
    }
    return undefined;
  }
}
