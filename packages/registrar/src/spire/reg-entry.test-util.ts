// Test helper: a RegEntry with SPIRE's defaults (no TTLs, no federation, no flags) for the fields
// a test does not name.
import type { RegEntry } from './entry.ts';

export function regEntry(fields: Partial<RegEntry> & Pick<RegEntry, 'spiffeId' | 'parentId' | 'selectors'>): RegEntry {
  return {
    id: '',
    x509SvidTtl: 0,
    jwtSvidTtl: 0,
    federatesWith: [],
    admin: false,
    downstream: false,
    dnsNames: [],
    hint: '',
    storeSvid: false,
    ...fields,
  };
}
