import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { EntrySchema, type Entry } from '@ztwim/proto';
import { formatEntry, formatEntryCount, formatEntryList, sortEntries } from './entry.ts';

const full = create(EntrySchema, {
  id: 'a0c9d77a-daa0-4e69-8a06-68fc22e44361',
  spiffeId: { trustDomain: 'example.org', path: '/w1' },
  parentId: { trustDomain: 'example.org', path: '/spire/agent/x' },
  selectors: [
    { type: 'k8s', value: 'ns:default' },
    { type: 'unix', value: 'uid:1000' },
  ],
  x509SvidTtl: 100,
  jwtSvidTtl: 30,
  federatesWith: ['fed.org'],
  admin: true,
  downstream: true,
  expiresAt: 1999999999n,
  dnsNames: ['a.example.org', 'b.example.org'],
  revisionNumber: 2n,
  storeSvid: true,
  hint: 'h1',
});

describe('formatEntry (17-char labels)', () => {
  const cases: [string, Entry, string][] = [
    [
      'every field, in spire-server order',
      full,
      [
        'Entry ID         : a0c9d77a-daa0-4e69-8a06-68fc22e44361',
        'SPIFFE ID        : spiffe://example.org/w1',
        'Parent ID        : spiffe://example.org/spire/agent/x',
        'Revision         : 2',
        'Downstream       : true',
        'X509-SVID TTL    : 100',
        'JWT-SVID TTL     : 30',
        'Expiration time  : 2033-05-18 03:33:19 +0000 UTC',
        'Selector         : k8s:ns:default',
        'Selector         : unix:uid:1000',
        'FederatesWith    : fed.org',
        'DNS name         : a.example.org',
        'DNS name         : b.example.org',
        'Admin            : true',
        'StoreSvid        : true',
        'Hint             : h1',
        '',
        '',
      ].join('\n'),
    ],
    [
      'request entry without ID: (none), default TTLs, optional lines omitted',
      create(EntrySchema, {
        spiffeId: { trustDomain: 'example.org', path: '/node1' },
        parentId: { trustDomain: 'example.org', path: '/spire/server' },
        selectors: [{ type: 'join_token', value: 'abc' }],
      }),
      [
        'Entry ID         : (none)',
        'SPIFFE ID        : spiffe://example.org/node1',
        'Parent ID        : spiffe://example.org/spire/server',
        'Revision         : 0',
        'X509-SVID TTL    : default',
        'JWT-SVID TTL     : default',
        'Selector         : join_token:abc',
        '',
        '',
      ].join('\n'),
    ],
    [
      'missing IDs print empty',
      create(EntrySchema, { id: 'x' }),
      'Entry ID         : x\nSPIFFE ID        : \nParent ID        : \nRevision         : 0\nX509-SVID TTL    : default\nJWT-SVID TTL     : default\n\n',
    ],
  ];
  for (const [name, e, want] of cases) it(name, () => assert.equal(formatEntry(e), want));
});

describe('formatEntryList / formatEntryCount', () => {
  const e = create(EntrySchema, { id: 'x' });
  const cases: [string, string, string][] = [
    ['Found 0 entries', formatEntryList([]), 'Found 0 entries\n'],
    ['Found 1 entry', formatEntryList([e]).split('\n')[0] as string, 'Found 1 entry'],
    ['Found 2 entries', formatEntryList([e, e]).split('\n')[0] as string, 'Found 2 entries'],
    ['0 registration entries', formatEntryCount(0), '0 registration entries\n'],
    ['1 registration entry', formatEntryCount(1), '1 registration entry\n'],
    ['7 registration entries', formatEntryCount(7), '7 registration entries\n'],
  ];
  for (const [name, got, want] of cases) it(name, () => assert.equal(got, want));
});

describe('sortEntries (util.SortTypesEntries)', () => {
  it('sorts selectors, then by spiffe id, parent id, x509 ttl, jwt ttl, selectors', () => {
    const mk = (id: string, sid: string, pid: string, ttl: number, jwt: number, sels: [string, string][]): Entry =>
      create(EntrySchema, {
        id,
        spiffeId: { trustDomain: 'example.org', path: sid },
        parentId: { trustDomain: 'example.org', path: pid },
        x509SvidTtl: ttl,
        jwtSvidTtl: jwt,
        selectors: sels.map(([type, value]) => ({ type, value })),
      });
    const entries = [
      mk('6', '/b', '/p', 0, 0, [['unix', 'b']]),
      mk('5', '/a', '/q', 0, 0, [['unix', 'a']]),
      mk('4', '/a', '/p', 10, 0, [['unix', 'a']]),
      mk('3', '/a', '/p', 0, 5, [['unix', 'a']]),
      mk('2', '/a', '/p', 0, 0, [
        ['unix', 'b'],
        ['k8s', 'z'],
      ]),
      mk('1', '/a', '/p', 0, 0, [['unix', 'z']]),
      mk('0', '/B', '/p', 0, 0, [['unix', 'z']]),
    ];
    sortEntries(entries);
    assert.deepEqual(
      entries.map((e) => e.id),
      ['0', '1', '2', '3', '4', '5', '6'],
    );
    assert.deepEqual(
      entries[2]?.selectors.map((s) => s.type),
      ['k8s', 'unix'],
    );
  });
});
