// The wire form of a registration entry (spire.api.types.Entry), written field by field.
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { internal } from '@ztwim/core';
import type { Entry, Selector } from '../datastore/datastore.ts';

const SCHEME = 'spiffe://';

/** A SPIFFEID message (trust_domain = 1, path = 2) as field `no`, from a stored `spiffe://` ID. */
function writeSpiffeId(w: BinaryWriter, no: number, id: string): void {
  // Stored IDs were validated when the entry was written: `spiffe://<td><path>`, as spiffeIdToWire splits them.
  const rest = id.startsWith(SCHEME) ? id.slice(SCHEME.length) : id;
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  w.tag(no, WireType.LengthDelimited).fork();
  if (td !== '') w.tag(1, WireType.LengthDelimited).string(td);
  if (path !== '') w.tag(2, WireType.LengthDelimited).string(path);
  w.join();
}

/**
 * Writes `e` as the body of an Entry message: the bytes `toBinary(EntrySchema, create(EntrySchema,
 * entryToProto(e)))` gives (entry-wire.test.ts checks it), without building the message and
 * walking its schema. The first GetAuthorizedEntries answer for an agent encodes each of its
 * entries (1,000 in bench/server.ts), and through the reflective path that took most of the
 * answer's time (docs/performance.md, "Server API").
 */
export function writeEntry(w: BinaryWriter, e: Entry): BinaryWriter {
  if (e.id !== '') w.tag(1, WireType.LengthDelimited).string(e.id);
  writeSpiffeId(w, 2, e.spiffeId);
  writeSpiffeId(w, 3, e.parentId);
  for (const s of e.selectors) {
    w.tag(4, WireType.LengthDelimited).fork();
    if (s.type !== '') w.tag(1, WireType.LengthDelimited).string(s.type);
    if (s.value !== '') w.tag(2, WireType.LengthDelimited).string(s.value);
    w.join();
  }
  if (e.x509SvidTtl !== 0) w.tag(5, WireType.Varint).int32(e.x509SvidTtl);
  for (const f of e.federatesWith) w.tag(6, WireType.LengthDelimited).string(f.startsWith(SCHEME) ? f.slice(SCHEME.length) : f);
  if (e.admin) w.tag(7, WireType.Varint).bool(true);
  if (e.downstream) w.tag(8, WireType.Varint).bool(true);
  if (e.expiresAt !== 0) w.tag(9, WireType.Varint).int64(e.expiresAt);
  for (const d of e.dnsNames) w.tag(10, WireType.LengthDelimited).string(d);
  if (e.revisionNumber !== 0) w.tag(11, WireType.Varint).int64(e.revisionNumber);
  if (e.storeSvid) w.tag(12, WireType.Varint).bool(true);
  if (e.jwtSvidTtl !== 0) w.tag(13, WireType.Varint).int32(e.jwtSvidTtl);
  if (e.hint !== '') w.tag(14, WireType.LengthDelimited).string(e.hint);
  if (e.createdAt !== 0) w.tag(15, WireType.Varint).int64(e.createdAt);
  return w;
}

/** Bytes of the varint of `v`, a safe non-negative integer. */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

function putVarint(b: Buffer, at: number, v: number): number {
  while (v >= 0x80) {
    b[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  b[at++] = v;
  return at;
}

/** Tag, length and bytes of a string field of `len` UTF-8 bytes (field numbers below 16: one tag byte). */
const strSize = (len: number): number => 1 + varintSize(len) + len;

function putStr(b: Buffer, at: number, tag: number, s: string, len: number): number {
  b[at++] = tag;
  at = putVarint(b, at, len);
  return at + b.write(s, at, len, 'utf8');
}

/** A count of whole seconds or a revision that the wire form takes as one varint of its value. */
const plainInt = (v: number): boolean => Number.isSafeInteger(v) && v >= 0;
const TAG_LD = (no: number): number => (no << 3) | WireType.LengthDelimited;
const TAG_VARINT = (no: number): number => (no << 3) | WireType.Varint;

/** Where the trust domain of a stored `spiffe://` ID starts, and where its path does. */
function idSplit(id: string): [start: number, slash: number] {
  const start = id.startsWith(SCHEME) ? SCHEME.length : 0;
  const slash = id.indexOf('/', start);
  return [start, slash < 0 ? id.length : slash];
}

/** Size of a SPIFFEID message body with a trust domain and a path of those UTF-8 lengths. */
const spiffeIdSize = (td: number, path: number): number => (td > 0 ? strSize(td) : 0) + (path > 0 ? strSize(path) : 0);

function putSpiffeId(b: Buffer, at: number, no: number, id: string, start: number, slash: number, td: number, path: number): number {
  b[at++] = TAG_LD(no);
  at = putVarint(b, at, spiffeIdSize(td, path));
  if (td > 0) at = putStr(b, at, TAG_LD(1), id.slice(start, slash), td);
  if (path > 0) at = putStr(b, at, TAG_LD(2), id.slice(slash), path);
  return at;
}

const utf8Len = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * The entry as one occurrence of field `no` of a message of a message: its tag, its length and the
 * bytes writeEntry writes, in one buffer sized up front (field numbers below 16 take one tag byte). An agent's first authorised-entries answer
 * encodes every one of its entries (1,000 in bench/server.ts) while that code is still cold;
 * BinaryWriter allocates a few typed arrays per field (fork, join, string), which made that first
 * answer several times slower than the next ones. Entries with a negative or unsafe integer take
 * writeEntry's path (never seen from the API's validation, kept exact all the same).
 */
export function encodeEntryField(no: number, e: Entry): Uint8Array {
  if (no > 15 || !plainInt(e.x509SvidTtl) || !plainInt(e.jwtSvidTtl) || !plainInt(e.expiresAt) || !plainInt(e.revisionNumber) || !plainInt(e.createdAt)) {
    return writeEntry(new BinaryWriter().tag(no, WireType.LengthDelimited).fork(), e).join().finish();
  }
  const idLen = utf8Len(e.id);
  const [sStart, sSlash] = idSplit(e.spiffeId);
  const sTd = utf8Len(e.spiffeId.slice(sStart, sSlash));
  const sPath = utf8Len(e.spiffeId.slice(sSlash));
  const [pStart, pSlash] = idSplit(e.parentId);
  const pTd = utf8Len(e.parentId.slice(pStart, pSlash));
  const pPath = utf8Len(e.parentId.slice(pSlash));
  let size = (idLen > 0 ? strSize(idLen) : 0) + strSize(spiffeIdSize(sTd, sPath)) + strSize(spiffeIdSize(pTd, pPath));
  const selLens: number[] = [];
  for (const s of e.selectors) {
    const t = utf8Len(s.type);
    const v = utf8Len(s.value);
    selLens.push(t, v);
    size += strSize((t > 0 ? strSize(t) : 0) + (v > 0 ? strSize(v) : 0));
  }
  if (e.x509SvidTtl !== 0) size += 1 + varintSize(e.x509SvidTtl);
  const fedLens: number[] = [];
  for (const f of e.federatesWith) {
    const l = utf8Len(f) - (f.startsWith(SCHEME) ? SCHEME.length : 0);
    fedLens.push(l);
    size += strSize(l);
  }
  if (e.admin) size += 2;
  if (e.downstream) size += 2;
  if (e.expiresAt !== 0) size += 1 + varintSize(e.expiresAt);
  const dnsLens: number[] = [];
  for (const d of e.dnsNames) {
    const l = utf8Len(d);
    dnsLens.push(l);
    size += strSize(l);
  }
  if (e.revisionNumber !== 0) size += 1 + varintSize(e.revisionNumber);
  if (e.storeSvid) size += 2;
  if (e.jwtSvidTtl !== 0) size += 1 + varintSize(e.jwtSvidTtl);
  const hintLen = utf8Len(e.hint);
  if (hintLen > 0) size += strSize(hintLen);
  if (e.createdAt !== 0) size += 1 + varintSize(e.createdAt);

  const outerTag = TAG_LD(no);
  const b = Buffer.allocUnsafe(1 + varintSize(size) + size);
  let at = 0;
  b[at++] = outerTag;
  at = putVarint(b, at, size);
  if (idLen > 0) at = putStr(b, at, TAG_LD(1), e.id, idLen);
  at = putSpiffeId(b, at, 2, e.spiffeId, sStart, sSlash, sTd, sPath);
  at = putSpiffeId(b, at, 3, e.parentId, pStart, pSlash, pTd, pPath);
  for (let i = 0; i < e.selectors.length; i++) {
    const s = e.selectors[i] as Selector;
    const t = selLens[2 * i] as number;
    const v = selLens[2 * i + 1] as number;
    b[at++] = TAG_LD(4);
    at = putVarint(b, at, (t > 0 ? strSize(t) : 0) + (v > 0 ? strSize(v) : 0));
    if (t > 0) at = putStr(b, at, TAG_LD(1), s.type, t);
    if (v > 0) at = putStr(b, at, TAG_LD(2), s.value, v);
  }
  if (e.x509SvidTtl !== 0) {
    b[at++] = TAG_VARINT(5);
    at = putVarint(b, at, e.x509SvidTtl);
  }
  for (let i = 0; i < e.federatesWith.length; i++) {
    const f = e.federatesWith[i] as string;
    at = putStr(b, at, TAG_LD(6), f.startsWith(SCHEME) ? f.slice(SCHEME.length) : f, fedLens[i] as number);
  }
  if (e.admin) {
    b[at++] = TAG_VARINT(7);
    b[at++] = 1;
  }
  if (e.downstream) {
    b[at++] = TAG_VARINT(8);
    b[at++] = 1;
  }
  if (e.expiresAt !== 0) {
    b[at++] = TAG_VARINT(9);
    at = putVarint(b, at, e.expiresAt);
  }
  for (let i = 0; i < e.dnsNames.length; i++) at = putStr(b, at, TAG_LD(10), e.dnsNames[i] as string, dnsLens[i] as number);
  if (e.revisionNumber !== 0) {
    b[at++] = TAG_VARINT(11);
    at = putVarint(b, at, e.revisionNumber);
  }
  if (e.storeSvid) {
    b[at++] = TAG_VARINT(12);
    b[at++] = 1;
  }
  if (e.jwtSvidTtl !== 0) {
    b[at++] = TAG_VARINT(13);
    at = putVarint(b, at, e.jwtSvidTtl);
  }
  if (hintLen > 0) at = putStr(b, at, TAG_LD(14), e.hint, hintLen);
  if (e.createdAt !== 0) {
    b[at++] = TAG_VARINT(15);
    at = putVarint(b, at, e.createdAt);
  }
  if (at !== b.length) throw internal('entry encoding: wrote other than the bytes it sized', { fields: { written: at, sized: b.length } });
  return b;
}
