import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLAG, FRAME, frame } from '../testing/raw-h2-client.ts';
import { AuthorityRewriter, CLIENT_PREFACE, isValidAuthority } from './authority-rewrite.ts';
import { HpackDecoder, HpackEncoder } from './hpack.ts';

const SETTINGS = frame(FRAME.SETTINGS, 0, 0);
const ACK = frame(FRAME.SETTINGS, FLAG.ACK, 0);

function run(r: AuthorityRewriter, chunks: readonly Buffer[]): Buffer {
  return Buffer.concat(chunks.flatMap((c) => r.push(c)));
}

/** Splits `b` into chunks of `n` bytes (frames cut anywhere). */
function bytewise(b: Buffer, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

describe('AuthorityRewriter', () => {
  it("knows nghttp2 1.61's authority characters", () => {
    for (const ok of ['localhost', 'a.b:80', '[::1]:8080', 'tmp%2Fx', "!$&'()*+,;=~_-"]) assert.ok(isValidAuthority(Buffer.from(ok)), ok);
    for (const bad of ['', '/tmp/x', 'a b', 'user@host', 'a?b', 'a#b', 'ü', 'a\\b', 'a"b', 'a{b}']) assert.ok(!isValidAuthority(Buffer.from(bad)), bad);
    assert.ok(isValidAuthority(Buffer.from(''), true), 'an empty host is allowed');
  });

  it('forwards a connection whose first request is fine byte for byte, however the bytes are cut', () => {
    const enc = new HpackEncoder();
    const block = Buffer.from(
      enc.encode([
        { name: ':authority', value: 'localhost', kind: 'incremental', huffman: true },
        { name: ':path', value: '/a' },
      ]),
    );
    const input = Buffer.concat([
      CLIENT_PREFACE,
      SETTINGS,
      ACK,
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, block),
      frame(FRAME.PING, 0, 0, Buffer.alloc(8)),
    ]);
    for (const n of [1, 7, 9, 64, input.length]) {
      const r = new AuthorityRewriter({ dropSettingsAcks: 1 });
      const out = run(r, bytewise(input, n));
      assert.deepEqual(
        out,
        Buffer.concat([CLIENT_PREFACE, SETTINGS, frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, block), frame(FRAME.PING, 0, 0, Buffer.alloc(8))]),
        `chunks of ${n}`,
      );
      assert.equal(r.settingsAcksDropped, 1);
      assert.equal(r.rewrittenBlocks, 0);
      assert.equal(r.otherFrames, 1);
    }
  });

  it('re-encodes every block once the first needs it: literals without indexing, authority localhost', () => {
    const enc = new HpackEncoder();
    const r = new AuthorityRewriter({ afterPreface: true });
    const server = new HpackDecoder();
    for (let i = 0; i < 20; i++) {
      const block = Buffer.from(
        enc.encode([
          { name: ':authority', value: '/run/agent.sock', kind: i === 0 ? 'incremental' : 'indexed', huffman: true },
          { name: 'x-i', value: String(i), kind: 'incremental' },
          { name: 'secret', value: 's', kind: 'never-indexed' },
        ]),
      );
      const out = run(r, [frame(FRAME.HEADERS, FLAG.END_HEADERS, 2 * i + 1, block)]);
      const reps = server.decode(out.subarray(9));
      assert.deepEqual(
        reps.map((x) => [x.kind, x.field?.name, Buffer.from(x.field!.value).toString()]),
        [
          ['without-indexing', ':authority', 'localhost'],
          ['without-indexing', 'x-i', String(i)],
          ['never-indexed', 'secret', 's'],
        ],
      );
      assert.equal(server.table.length, 0, "the server's dynamic table stays empty");
    }
  });

  it('stops inspecting on what is not HTTP/2 as expected, and forwards the bytes as they came', () => {
    const cases: Record<string, Buffer> = {
      'no preface': Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      'oversized frame': Buffer.concat([CLIENT_PREFACE, Buffer.from([0x7f, 0xff, 0xff, 1, 4, 0, 0, 0, 1]), Buffer.alloc(100)]),
      'bad HPACK index': Buffer.concat([CLIENT_PREFACE, frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, Buffer.from([0xff, 0x7f])), SETTINGS]),
      'frame inside a header block': Buffer.concat([
        CLIENT_PREFACE,
        frame(FRAME.HEADERS, 0, 1, Buffer.from([0x82])),
        SETTINGS,
        frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, Buffer.from([0x84])),
      ]),
      'CONTINUATION alone': Buffer.concat([CLIENT_PREFACE, frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, Buffer.from([0x82]))]),
      'padding longer than the frame': Buffer.concat([CLIENT_PREFACE, frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.PADDED, 1, Buffer.from([9, 0x82]))]),
    };
    for (const [name, input] of Object.entries(cases)) {
      const r = new AuthorityRewriter();
      const out = run(r, bytewise(input, 5));
      assert.deepEqual(Buffer.concat([out, ...r.takeBuffered()]), input, name);
      assert.ok(r.passthrough, name);
    }
  });
});
