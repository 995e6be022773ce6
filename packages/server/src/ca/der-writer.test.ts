import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { integer, oid, seq, time, tlv } from './der-writer.ts';
import { children, readOid, readTlv } from '@ztwim/spiffe/internal';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('der-writer', () => {
  const lengths: Array<[number, string]> = [
    [0, '0400'],
    [0x7f, '047f'],
    [0x80, '048180'],
    [0xff, '0481ff'],
    [0x100, '04820100'],
    [0x10000, '0483010000'],
  ];
  for (const [n, header] of lengths) {
    it(`encodes a ${n}-byte body with the minimal length form`, () => {
      const enc = tlv(0x04, new Uint8Array(n));
      assert.equal(hex(enc.subarray(0, header.length / 2)), header);
      assert.equal(enc.length, header.length / 2 + n);
      const t = readTlv(enc, 0);
      assert.equal(t.end, enc.length);
    });
  }

  it('concatenates several contents', () => {
    assert.equal(hex(seq(Buffer.from([1]), Buffer.from([2, 3]))), '3003010203');
  });

  const ints: Array<[bigint, string]> = [
    [0n, '020100'],
    [1n, '020101'],
    [127n, '02017f'],
    [128n, '02020080'],
    [256n, '02020100'],
    [2n ** 128n, '021101' + '00'.repeat(16)],
  ];
  for (const [v, want] of ints) it(`INTEGER ${v}`, () => assert.equal(hex(integer(v)), want));

  it('OIDs round-trip through the reader', () => {
    for (const o of ['2.5.29.17', '1.2.840.113549.1.1.11', '1.3.6.1.5.5.7.3.2', '2.999.1']) {
      const enc = oid(o);
      assert.equal(readOid(enc, readTlv(enc, 0)), o);
    }
    assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
  });

  const times: Array<[string, string]> = [
    ['2026-01-01T00:00:00.999Z', '170d3236303130313030303030305a'],
    ['2049-12-31T23:59:59Z', '170d3439313233313233353935395a'],
    ['2050-01-01T00:00:00Z', '180f32303530303130313030303030305a'],
  ];
  for (const [iso, want] of times) it(`time ${iso}`, () => assert.equal(hex(time(new Date(iso))), want));

  it('nested structures parse back', () => {
    const enc = seq(integer(5n), seq(oid('2.5.4.3')));
    const kids = children(enc, readTlv(enc, 0));
    assert.deepEqual(
      kids.map((k) => k.tag),
      [0x02, 0x30],
    );
  });
});
