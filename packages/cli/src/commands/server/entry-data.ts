// `-data FILE|-` for entry create/update: the Go-JSON form of spire.common.RegistrationEntries
// (keys matched case-insensitively, full `spiffe://` IDs), converted like SPIRE's
// api.RegistrationEntryToProto.
import { create } from '@bufbuild/protobuf';
import { EntrySchema, type Entry } from '@ztwim/proto';
import { parseIdToProto, parseTrustDomainName } from './common.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const FIELD = 'Go struct field RegistrationEntry.entries';

function pick(obj: { [k: string]: Json }, name: string): Json | undefined {
  // Go prefers an exact match, then a case-insensitive one (the last such key wins).
  if (Object.hasOwn(obj, name)) return obj[name];
  let v: Json | undefined;
  for (const [k, x] of Object.entries(obj)) if (k.toLowerCase() === name.toLowerCase()) v = x;
  return v;
}

function typeName(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  return typeof v;
}

function unmarshalError(v: Json, field: string, goType: string): Error {
  return new Error(`json: cannot unmarshal ${typeName(v)} into ${FIELD}.${field} of type ${goType}`);
}

function str(obj: { [k: string]: Json }, name: string): string {
  const v = pick(obj, name);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw unmarshalError(v, name, 'string');
  return v;
}

function bool(obj: { [k: string]: Json }, name: string): boolean {
  const v = pick(obj, name);
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw unmarshalError(v, name, 'bool');
  return v;
}

function int(obj: { [k: string]: Json }, name: string, goType: 'int32' | 'int64'): number {
  const v = pick(obj, name);
  if (v === undefined || v === null) return 0;
  const max = goType === 'int32' ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
  if (typeof v !== 'number') throw unmarshalError(v, name, goType);
  if (!Number.isInteger(v) || v > max || v < -max - 1) {
    throw new Error(`json: cannot unmarshal number ${v} into ${FIELD}.${name} of type ${goType}`);
  }
  return v;
}

function strList(obj: { [k: string]: Json }, name: string): string[] {
  const v = pick(obj, name);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw unmarshalError(v, name, '[]string');
  return v.map((x) => {
    if (typeof x !== 'string') throw unmarshalError(x, name, 'string');
    return x;
  });
}

function isObject(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses registration JSON into API entries (errors read like spire-server's). */
export function parseEntryData(text: string): Entry[] {
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch (e) {
    throw new Error(`invalid character in registration JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (doc === null) return [];
  if (!isObject(doc)) throw new Error(`json: cannot unmarshal ${typeName(doc)} into Go value of type common.RegistrationEntries`);
  const list = pick(doc, 'entries');
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list))
    throw new Error(`json: cannot unmarshal ${typeName(list)} into Go struct field RegistrationEntries.entries of type []*common.RegistrationEntry`);
  return list.map((raw) => {
    if (raw === null) throw new Error('missing registration entry');
    if (!isObject(raw)) throw new Error(`json: cannot unmarshal ${typeName(raw)} into ${FIELD} of type common.RegistrationEntry`);
    const selRaw = pick(raw, 'selectors');
    const selectors: { type: string; value: string }[] = [];
    if (selRaw !== undefined && selRaw !== null) {
      if (!Array.isArray(selRaw)) throw unmarshalError(selRaw, 'selectors', '[]*common.Selector');
      for (const s of selRaw) {
        if (s === null) continue;
        if (!isObject(s)) throw unmarshalError(s, 'selectors', 'common.Selector');
        selectors.push({ type: str(s, 'type'), value: str(s, 'value') });
      }
    }
    const spiffeIdText = str(raw, 'spiffe_id');
    const parentIdText = str(raw, 'parent_id');
    const x509SvidTtl = int(raw, 'x509_svid_ttl', 'int32');
    const federatesWithRaw = strList(raw, 'federates_with');
    const entryId = str(raw, 'entry_id');
    const admin = bool(raw, 'admin');
    const downstream = bool(raw, 'downstream');
    const entryExpiry = int(raw, 'entryExpiry', 'int64');
    const dnsNames = strList(raw, 'dns_names');
    const revisionNumber = int(raw, 'revision_number', 'int64');
    const storeSvid = bool(raw, 'store_svid');
    const jwtSvidTtl = int(raw, 'jwt_svid_ttl', 'int32');
    const hint = str(raw, 'hint');
    const createdAt = int(raw, 'created_at', 'int64');

    let spiffeId;
    try {
      spiffeId = parseIdToProto(spiffeIdText);
    } catch (e) {
      throw new Error(`invalid SPIFFE ID: ${(e as Error).message}`);
    }
    let parentId;
    try {
      parentId = parseIdToProto(parentIdText);
    } catch (e) {
      throw new Error(`invalid parent ID: ${(e as Error).message}`);
    }
    const federatesWith = federatesWithRaw.map((td) => {
      try {
        return parseTrustDomainName(td);
      } catch (e) {
        throw new Error(`invalid federated trust domain: ${(e as Error).message}`);
      }
    });
    return create(EntrySchema, {
      id: entryId,
      spiffeId,
      parentId,
      selectors,
      x509SvidTtl,
      federatesWith,
      admin,
      downstream,
      expiresAt: BigInt(entryExpiry),
      dnsNames,
      revisionNumber: BigInt(revisionNumber),
      storeSvid,
      jwtSvidTtl,
      hint,
      createdAt: BigInt(createdAt),
    });
  });
}
