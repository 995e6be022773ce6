import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { EntrySchema } from '@ztwim/proto';
import type { Entry } from '../datastore/datastore.ts';
import { entryToProto } from './convert.ts';
import { encodeEntryField, writeEntry } from './entry-wire.ts';

const base: Entry = {
  id: '',
  spiffeId: 'spiffe://example.org/w',
  parentId: 'spiffe://example.org/spire/agent/join_token/t',
  selectors: [],
  x509SvidTtl: 0,
  jwtSvidTtl: 0,
  federatesWith: [],
  admin: false,
  downstream: false,
  expiresAt: 0,
  dnsNames: [],
  revisionNumber: 0,
  storeSvid: false,
  hint: '',
  createdAt: 0,
};

/** What protobuf-es writes for the message entryToProto builds. */
const reflective = (e: Entry): Uint8Array => toBinary(EntrySchema, create(EntrySchema, entryToProto(e)));
/** The same as one occurrence of field `no` of an enclosing message. */
const asField = (no: number, e: Entry): Uint8Array => new BinaryWriter().tag(no, WireType.LengthDelimited).bytes(reflective(e)).finish();

/** Both encoders against protobuf-es: writeEntry alone, and encodeEntryField as field 1 and as field 20. */
function assertWire(e: Entry): void {
  const what = JSON.stringify(e);
  assert.deepEqual(writeEntry(new BinaryWriter(), e).finish(), reflective(e), what);
  assert.deepEqual(new Uint8Array(encodeEntryField(1, e)), asField(1, e), what);
  assert.deepEqual(new Uint8Array(encodeEntryField(20, e)), asField(20, e), what);
}

describe('writeEntry and encodeEntryField', () => {
  const cases: Array<[string, Entry]> = [
    ['zero values', base],
    ['root path IDs', { ...base, spiffeId: 'spiffe://example.org', parentId: 'spiffe://td.example' }],
    [
      'every field set',
      {
        id: '8b1f0c4e-5c5e-4bde-9a0e-3c1e1a8f0d11',
        spiffeId: 'spiffe://example.org/ns/prod/sa/web',
        parentId: 'spiffe://example.org/spire/agent/x509pop/abc',
        selectors: [
          { type: 'k8s', value: 'ns:prod' },
          { type: 'unix', value: 'uid:1000' },
          { type: 'x', value: '' },
        ],
        x509SvidTtl: 3600,
        jwtSvidTtl: 300,
        federatesWith: ['spiffe://other.org', 'third.org'],
        admin: true,
        downstream: true,
        expiresAt: 4_102_444_800,
        dnsNames: ['web.example.org', 'wëb.example'],
        revisionNumber: 2 ** 40 + 3,
        storeSvid: true,
        hint: 'hint — ünïcode ✓',
        createdAt: 1_700_000_000,
      },
    ],
    ['negative TTLs and times', { ...base, x509SvidTtl: -1, jwtSvidTtl: -2_147_483_648, expiresAt: -5, createdAt: -1 }],
    ['one negative time', { ...base, revisionNumber: -1 }],
    [
      'multi-byte lengths and varints',
      { ...base, id: 'i'.repeat(300), hint: 'h'.repeat(20_000), x509SvidTtl: 2 ** 31 - 1, expiresAt: 2 ** 53 - 1, revisionNumber: 128 },
    ],
    [
      'non-ASCII text in every free-text field',
      {
        ...base,
        parentId: 'spiffe://td.example',
        selectors: [{ type: 'ü', value: '🙂:\u0000' }],
        federatesWith: ['spiffe://fed.org', 'plain.org'],
        dnsNames: ['ï.example'],
      },
    ],
  ];
  for (const [name, e] of cases) {
    it(`writes what protobuf-es writes: ${name}`, () => {
      assertWire(e);
    });
  }

  it('writes what protobuf-es writes for 500 generated entries', () => {
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n);
    const str = (n: number): string => Array.from({ length: 1 + rnd(n) }, () => String.fromCharCode(97 + rnd(26))).join('');
    for (let i = 0; i < 500; i++) {
      const e: Entry = {
        id: rnd(4) === 0 ? '' : str(36),
        spiffeId: `spiffe://${str(8)}x.org/${str(20)}`,
        parentId: `spiffe://${str(8)}y.org${rnd(3) === 0 ? '' : `/${str(12)}/${str(5)}`}`,
        selectors: Array.from({ length: rnd(4) }, () => ({ type: str(6), value: str(30) })),
        x509SvidTtl: rnd(3) === 0 ? 0 : rnd(100_000),
        jwtSvidTtl: rnd(3) === 0 ? 0 : rnd(100_000),
        federatesWith: Array.from({ length: rnd(3) }, () => `spiffe://${str(10)}z.org`),
        admin: rnd(2) === 0,
        downstream: rnd(2) === 0,
        expiresAt: rnd(2) === 0 ? 0 : 1_700_000_000 + rnd(1_000_000),
        dnsNames: Array.from({ length: rnd(3) }, () => `${str(10)}.example`),
        revisionNumber: rnd(1000),
        storeSvid: rnd(2) === 0,
        hint: str(10),
        createdAt: 1_700_000_000 + rnd(1_000_000),
      };
      assertWire(e);
    }
  });
});
