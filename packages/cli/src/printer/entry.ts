import { wireSpiffeIdString } from '@ztwim/core';
import type { Entry, SPIFFEID, Selector } from '@ztwim/proto';
import { goStringCompare } from './go-json.ts';
import { goTimeUtc } from './go-format.ts';

/** `spiffe://<td><path>`, or "" when absent (spire-server's protoToIDString). */
export function idToString(id: SPIFFEID | undefined): string {
  return wireSpiffeIdString(id);
}

/** One entry block as spire-server prints it (labels padded to 17, trailing blank line). */
export function formatEntry(e: Entry): string {
  const l: string[] = [];
  const add = (label: string, value: string | number | bigint | boolean): void => {
    l.push(`${label.padEnd(17)}: ${String(value)}`);
  };
  add('Entry ID', e.id === '' ? '(none)' : e.id);
  add('SPIFFE ID', idToString(e.spiffeId));
  add('Parent ID', idToString(e.parentId));
  add('Revision', e.revisionNumber);
  if (e.downstream) add('Downstream', true);
  add('X509-SVID TTL', e.x509SvidTtl === 0 ? 'default' : e.x509SvidTtl);
  add('JWT-SVID TTL', e.jwtSvidTtl === 0 ? 'default' : e.jwtSvidTtl);
  if (e.expiresAt !== 0n) add('Expiration time', goTimeUtc(e.expiresAt));
  for (const s of e.selectors) add('Selector', `${s.type}:${s.value}`);
  for (const td of e.federatesWith) add('FederatesWith', td);
  for (const d of e.dnsNames) add('DNS name', d);
  if (e.admin) add('Admin', true);
  if (e.storeSvid) add('StoreSvid', true);
  if (e.hint !== '') add('Hint', e.hint);
  return l.map((x) => x + '\n').join('') + '\n';
}

/** `Found N entries` / `Found 1 entry` followed by the blocks. */
export function formatEntryList(entries: readonly Entry[]): string {
  return `Found ${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}\n` + entries.map(formatEntry).join('');
}

function compareSelector(a: Selector, b: Selector): number {
  return goStringCompare(a.type, b.type) || goStringCompare(a.value, b.value);
}

function compareEntries(a: Entry, b: Entry): number {
  const c =
    goStringCompare(a.spiffeId?.trustDomain ?? '', b.spiffeId?.trustDomain ?? '') ||
    goStringCompare(a.spiffeId?.path ?? '', b.spiffeId?.path ?? '') ||
    goStringCompare(a.parentId?.trustDomain ?? '', b.parentId?.trustDomain ?? '') ||
    goStringCompare(a.parentId?.path ?? '', b.parentId?.path ?? '');
  if (c !== 0) return c;
  if (a.x509SvidTtl !== b.x509SvidTtl) return a.x509SvidTtl < b.x509SvidTtl ? -1 : 1;
  if (a.jwtSvidTtl !== b.jwtSvidTtl) return a.jwtSvidTtl < b.jwtSvidTtl ? -1 : 1;
  if (a.selectors.length !== b.selectors.length) return a.selectors.length < b.selectors.length ? -1 : 1;
  for (let i = 0; i < a.selectors.length; i++) {
    const s = compareSelector(a.selectors[i] as Selector, b.selectors[i] as Selector);
    if (s !== 0) return s;
  }
  return 0;
}

/** spire's util.SortTypesEntries: sorts each entry's selectors, then the entries (in place). */
export function sortEntries(entries: Entry[]): void {
  for (const e of entries) e.selectors.sort(compareSelector);
  entries.sort(compareEntries);
}

/** `N registration entries` / `1 registration entry`. */
export function formatEntryCount(n: number): string {
  return `${n} registration ${n === 1 ? 'entry' : 'entries'}\n`;
}
