import { invalidArgument, spiffeIdFromWire, spiffeIdToWire } from '@ztwim/core';
import { TrustDomain, type SpiffeId } from '@ztwim/spiffe';
import {
  FederatesWithMatch_MatchBehavior,
  SelectorMatch_MatchBehavior,
  type Entry as ProtoEntry,
  type EntryMask as ProtoEntryMask,
  type FederatesWithMatch,
  type SelectorMatch,
  type SPIFFEID,
} from '@ztwim/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { EntrySchema } from '@ztwim/proto';
import type { Entry, EntryFilter, EntryField, MatchBehavior, NewEntry, Page, Selector } from '../datastore/datastore.ts';

/** Output mask over every wire field (the store-owned revision and creation time included). */
export type EntryOutputMask = Partial<Record<EntryField | 'revisionNumber' | 'createdAt', boolean>>;

const MATCH: Record<number, MatchBehavior> = {
  [SelectorMatch_MatchBehavior.MATCH_EXACT]: 'EXACT',
  [SelectorMatch_MatchBehavior.MATCH_SUBSET]: 'SUBSET',
  [SelectorMatch_MatchBehavior.MATCH_SUPERSET]: 'SUPERSET',
  [SelectorMatch_MatchBehavior.MATCH_ANY]: 'ANY',
};
const FW_MATCH: Record<number, MatchBehavior> = {
  [FederatesWithMatch_MatchBehavior.MATCH_EXACT]: 'EXACT',
  [FederatesWithMatch_MatchBehavior.MATCH_SUBSET]: 'SUBSET',
  [FederatesWithMatch_MatchBehavior.MATCH_SUPERSET]: 'SUPERSET',
  [FederatesWithMatch_MatchBehavior.MATCH_ANY]: 'ANY',
};

export function selectorMatchFromProto(m: SelectorMatch, what: string): { selectors: Selector[]; match: MatchBehavior } {
  if (m.selectors.length === 0) throw invalidArgument(`malformed ${what}: empty selector set`);
  const match = MATCH[m.match];
  if (match === undefined) throw invalidArgument(`malformed ${what}: unknown match behavior ${m.match}`);
  return { selectors: m.selectors.map((s) => selectorFromProto(s.type, s.value)), match };
}

function fwMatchFromProto(m: FederatesWithMatch): { trustDomains: string[]; match: MatchBehavior } {
  if (m.trustDomains.length === 0) throw invalidArgument('malformed federates with filter: empty trust domain set');
  const match = FW_MATCH[m.match];
  if (match === undefined) throw invalidArgument(`malformed federates with filter: unknown match behavior ${m.match}`);
  return {
    trustDomains: m.trustDomains.map((t) => {
      try {
        return TrustDomain.parse(t).idString();
      } catch (e) {
        throw invalidArgument(`malformed federates with filter: ${(e as Error).message}`);
      }
    }),
    match,
  };
}

export function selectorFromProto(type: string, value: string): Selector {
  if (type === '') throw invalidArgument('missing selector type');
  if (type.includes(':')) throw invalidArgument('selector type contains ":"');
  if (value === '') throw invalidArgument('missing selector value');
  return { type, value };
}

export interface ProtoEntryFilter {
  readonly bySpiffeId?: SPIFFEID | undefined;
  readonly byParentId?: SPIFFEID | undefined;
  readonly bySelectors?: SelectorMatch | undefined;
  readonly byFederatesWith?: FederatesWithMatch | undefined;
  readonly byHint?: string | undefined;
  readonly byDownstream?: boolean | undefined;
}

/** A list request's page_size / page_token as the datastore's Page (0 and '' mean not set). */
export function pageFromProto(req: { readonly pageSize: number; readonly pageToken: string }): Page {
  return {
    ...(req.pageSize > 0 ? { pageSize: req.pageSize } : {}),
    ...(req.pageToken === '' ? {} : { pageToken: req.pageToken }),
  };
}

export function entryFilterFromProto(f: ProtoEntryFilter | undefined): EntryFilter {
  if (f === undefined) return {};
  const out: { -readonly [K in keyof EntryFilter]: EntryFilter[K] } = {};
  if (f.bySpiffeId !== undefined) out.bySpiffeId = spiffeIdFromWire(f.bySpiffeId, 'malformed SPIFFE ID filter').toString();
  if (f.byParentId !== undefined) out.byParentId = spiffeIdFromWire(f.byParentId, 'malformed parent ID filter').toString();
  if (f.bySelectors !== undefined) out.bySelectors = selectorMatchFromProto(f.bySelectors, 'selectors filter');
  if (f.byFederatesWith !== undefined) out.byFederatesWith = fwMatchFromProto(f.byFederatesWith);
  if (f.byHint !== undefined) out.byHint = f.byHint;
  // SPIRE: by_downstream=false means "no filter"; only true restricts.
  if (f.byDownstream === true) out.byDownstream = true;
  return out;
}

const DNS_LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

function validDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  return labels.every((l, i) => DNS_LABEL.test(l) || (i === 0 && l === '*'));
}

/** Validates a wire entry and converts it, as SPIRE's `ProtoToRegistrationEntry` does. */
export function entryFromProto(e: ProtoEntry, td: TrustDomain): NewEntry {
  const fail = (m: string): never => {
    throw invalidArgument(`failed to convert entry: ${m}`);
  };
  let spiffeId: SpiffeId;
  let parentId: SpiffeId;
  try {
    parentId = spiffeIdFromWire(e.parentId, 'invalid parent ID');
  } catch (err) {
    return fail((err as Error).message);
  }
  try {
    spiffeId = spiffeIdFromWire(e.spiffeId, 'invalid spiffe ID');
  } catch (err) {
    return fail((err as Error).message);
  }
  if (!parentId.memberOf(td)) fail(`invalid parent ID: "${parentId}" is not a member of trust domain "${td.name}"`);
  if (parentId.isTrustDomainId()) fail(`invalid parent ID: "${parentId}" is not a workload in trust domain "${td.name}"; path is empty`);
  if (!spiffeId.memberOf(td)) fail(`invalid spiffe ID: "${spiffeId}" is not a member of trust domain "${td.name}"`);
  if (spiffeId.isTrustDomainId()) fail(`invalid spiffe ID: "${spiffeId}" is not a workload in trust domain "${td.name}"; path is empty`);
  if (spiffeId.path === '/spire' || spiffeId.path.startsWith('/spire/')) {
    fail(`invalid spiffe ID: "${spiffeId}" is not a workload in trust domain "${td.name}"; path is in the reserved namespace "/spire"`);
  }
  if (e.selectors.length === 0) fail('selector list is empty');
  const selectors = e.selectors.map((s) => {
    try {
      return selectorFromProto(s.type, s.value);
    } catch (err) {
      return fail((err as Error).message);
    }
  });
  if (e.storeSvid && new Set(selectors.map((s) => s.type)).size > 1) fail('selector types must be the same when store SVID is enabled');
  for (const d of e.dnsNames) if (!validDnsName(d)) fail(`invalid DNS name "${d}"`);
  if (e.x509SvidTtl < 0) fail('invalid X509-SVID TTL: must be non-negative');
  if (e.jwtSvidTtl < 0) fail('invalid JWT-SVID TTL: must be non-negative');
  if (Buffer.byteLength(e.hint) > 1024) fail('hint is too long, max length is 1024 characters');
  if (e.id !== '' && (e.id.length > 255 || !/^[A-Za-z0-9._-]+$/.test(e.id))) {
    fail('invalid entry ID: must be at most 255 characters of [A-Za-z0-9._-]');
  }
  const federatesWith = e.federatesWith.map((f) => {
    try {
      return TrustDomain.parse(f).idString();
    } catch (err) {
      return fail(`invalid federated trust domain: ${(err as Error).message}`);
    }
  });
  return {
    ...(e.id === '' ? {} : { id: e.id }),
    spiffeId: spiffeId.toString(),
    parentId: parentId.toString(),
    selectors,
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    federatesWith,
    admin: e.admin,
    downstream: e.downstream,
    expiresAt: Number(e.expiresAt),
    dnsNames: [...e.dnsNames],
    storeSvid: e.storeSvid,
    hint: e.hint,
  };
}

export type ProtoEntryInit = MessageInitShape<typeof EntrySchema>;

export function entryMaskFromProto(m: ProtoEntryMask | undefined): EntryOutputMask | undefined {
  if (m === undefined) return undefined;
  return {
    spiffeId: m.spiffeId,
    parentId: m.parentId,
    selectors: m.selectors,
    x509SvidTtl: m.x509SvidTtl,
    jwtSvidTtl: m.jwtSvidTtl,
    federatesWith: m.federatesWith,
    admin: m.admin,
    downstream: m.downstream,
    expiresAt: m.expiresAt,
    dnsNames: m.dnsNames,
    revisionNumber: m.revisionNumber,
    storeSvid: m.storeSvid,
    hint: m.hint,
    createdAt: m.createdAt,
  };
}

/** Domain entry → wire entry; a mask keeps only the fields set to true (the id always). */
export function entryToProto(e: Entry, mask?: EntryOutputMask): ProtoEntryInit {
  const on = (f: keyof EntryOutputMask): boolean => mask === undefined || mask[f] === true;
  return {
    id: e.id,
    ...(on('spiffeId') ? { spiffeId: spiffeIdToWire(e.spiffeId) } : {}),
    ...(on('parentId') ? { parentId: spiffeIdToWire(e.parentId) } : {}),
    ...(on('selectors') ? { selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })) } : {}),
    ...(on('x509SvidTtl') ? { x509SvidTtl: e.x509SvidTtl } : {}),
    ...(on('jwtSvidTtl') ? { jwtSvidTtl: e.jwtSvidTtl } : {}),
    ...(on('federatesWith') ? { federatesWith: e.federatesWith.map((f) => f.replace(/^spiffe:\/\//, '')) } : {}),
    ...(on('admin') ? { admin: e.admin } : {}),
    ...(on('downstream') ? { downstream: e.downstream } : {}),
    ...(on('expiresAt') ? { expiresAt: BigInt(e.expiresAt) } : {}),
    ...(on('dnsNames') ? { dnsNames: [...e.dnsNames] } : {}),
    ...(on('revisionNumber') ? { revisionNumber: BigInt(e.revisionNumber) } : {}),
    ...(on('storeSvid') ? { storeSvid: e.storeSvid } : {}),
    ...(on('hint') ? { hint: e.hint } : {}),
    ...(on('createdAt') ? { createdAt: BigInt(e.createdAt) } : {}),
  };
}
