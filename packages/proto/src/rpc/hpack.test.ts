import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HpackDecoder, HpackEncoder, HpackError, huffmanDecode, huffmanEncode } from './hpack.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

describe('hpack', () => {
  // RFC 7541 Appendix C.4: requests with Huffman coding, one decoder across the three blocks.
  it('decodes RFC 7541 C.4 (Huffman, dynamic table across blocks)', () => {
    const d = new HpackDecoder();
    const fields = (block: string): string[] => d.decode(hex(block)).map((r) => `${r.field!.name}: ${text(r.field!.value)}`);
    assert.deepEqual(fields('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'), [':method: GET', ':scheme: http', ':path: /', ':authority: www.example.com']);
    assert.equal(d.table.size, 57);
    assert.deepEqual(fields('8286 84be 5886 a8eb 1064 9cbf'), [
      ':method: GET',
      ':scheme: http',
      ':path: /',
      ':authority: www.example.com',
      'cache-control: no-cache',
    ]);
    assert.equal(d.table.size, 110);
    assert.deepEqual(fields('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'), [
      ':method: GET',
      ':scheme: https',
      ':path: /index.html',
      ':authority: www.example.com',
      'custom-key: custom-value',
    ]);
    assert.equal(d.table.size, 164);
  });

  it('huffman-encodes as RFC 7541 C.4.1 does, and round-trips every octet', () => {
    assert.deepEqual(Buffer.from(huffmanEncode(Buffer.from('www.example.com'))), hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'));
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
  });

  it('refuses bad huffman padding, an EOS symbol and unknown indexes', () => {
    assert.throws(() => huffmanDecode(hex('00')), HpackError); // '0' then 3 zero bits of padding
    assert.throws(() => huffmanDecode(hex('ffffffff')), HpackError); // EOS (30 ones)
    assert.throws(() => new HpackDecoder().decode(hex('be')), HpackError); // index 62, empty dynamic table
  });

  it('evicts by size and applies table size updates', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    for (let i = 0; i < 100; i++) {
      d.decode(e.encode([{ name: `x-${i}`, value: 'v'.repeat(i), kind: 'incremental', huffman: i % 2 === 0 }]));
      assert.equal(d.table.size, e.table.size);
      assert.equal(d.table.length, e.table.length);
    }
    d.decode(e.encode([], [100]));
    assert.equal(d.table.maxSize, 100);
    assert.ok(d.table.size <= 100);
  });
});
