// The wire form of a registration entry (spire.api.types.Entry), written field by field.
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { Entry } from '../datastore/datastore.ts';

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
