/**
 * The SDK's own HTTP/2 client at the frame level, against a scripted peer on a Unix socket: the
 * preface and SETTINGS, frames cut at every byte, padding, CONTINUATION both ways, flow control
 * windows both ways, GOAWAY, RST_STREAM both ways, HPACK with the peer's dynamic table, and
 * malformed server input ending the calls with a typed error naming the cause (never a crash,
 * never a hang).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import { create, toBinary } from '@bufbuild/protobuf';
import { JWTSVIDResponseSchema, SpiffeWorkloadAPI, ValidateJWTSVIDResponseSchema } from './proto/workload/workload_pb.ts';
import { GrpcCallError, GrpcChannel, unixConnector } from './grpc-http2.ts';
import { CONNECTION_WINDOW, H2Code, H2ProtocolError, socketTransport, STREAM_WINDOW } from './h2-connection.ts';
import { encodeHeaderBlock, HpackDecoder, HpackError } from './hpack.ts';
import type { StreamEnd, StreamEvents, TransportSession } from './transport.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-h2c-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const T = { timeout: 10_000 };
const m = SpiffeWorkloadAPI.method;
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const PUSH_PROMISE = 5;
const PING = 6;
const GOAWAY = 7;
const WINDOW_UPDATE = 8;
const CONTINUATION = 9;

function frame(type: number, flags: number, id: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(id, 5);
  out.set(payload, 9);
  return out;
}
const u32 = (...xs: number[]): Buffer => {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => b.writeUInt32BE(x, 4 * i));
  return b;
};
const settingsPayload = (pairs: readonly (readonly [number, number])[]): Buffer => {
  const b = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([k, v], i) => {
    b.writeUInt16BE(k, 6 * i);
    b.writeUInt32BE(v, 6 * i + 2);
  });
  return b;
};
const grpcMessage = (payload: Uint8Array): Buffer => Buffer.concat([Buffer.from([0]), u32(payload.length), payload]);
const jwtMessage = (token: string): Buffer =>
  grpcMessage(toBinary(JWTSVIDResponseSchema, create(JWTSVIDResponseSchema, { svids: [{ spiffeId: 'spiffe://example.org/a', svid: token }] })));
const OK_HEADERS = encodeHeaderBlock([
  [':status', '200'],
  ['content-type', 'application/grpc'],
]);
const OK_TRAILERS = encodeHeaderBlock([['grpc-status', '0']]);
/** A whole OK response to a FetchJWTSVID on stream `id`: headers, one message, trailers. */
const okResponse = (id: number, token: string): Buffer[] => [
  frame(HEADERS, 4, id, OK_HEADERS),
  frame(DATA, 0, id, jwtMessage(token)),
  frame(HEADERS, 5, id, OK_TRAILERS),
];

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly id: number;
  readonly payload: Buffer;
}

/** One accepted connection of the scripted peer: the frames the client sent, and writes back. */
class PeerConn {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  readonly decoder = new HpackDecoder();
  preface = '';
  #buf = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  closed = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      if (this.preface === '' && this.#buf.length >= 24) {
        this.preface = this.#buf.subarray(0, 24).toString('latin1');
        this.#buf = this.#buf.subarray(24);
      }
      while (this.preface !== '' && this.#buf.length >= 9) {
        const len = this.#buf.readUIntBE(0, 3);
        if (this.#buf.length < 9 + len) break;
        this.frames.push({
          type: this.#buf[3] as number,
          flags: this.#buf[4] as number,
          id: this.#buf.readUInt32BE(5),
          payload: this.#buf.subarray(9, 9 + len),
        });
        this.#buf = this.#buf.subarray(9 + len);
      }
      this.#wake?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
  }

  write(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  /** Waits for a frame the client sent that matches (searching from `from`). */
  async next(match: (f: Frame) => boolean, from = 0): Promise<Frame> {
    for (;;) {
      const f = this.frames.slice(from).find(match);
      if (f !== undefined) return f;
      if (this.closed) throw new GrpcCallError(2, 'peer connection closed while waiting for a frame');
      await new Promise<void>((r) => {
        this.#wake = r;
      });
    }
  }

  /** The next request's HEADERS (joined with its CONTINUATIONs), decoded. */
  async request(n = 0): Promise<{ id: number; fields: Record<string, string> }> {
    await this.next(() => this.frames.filter((f) => f.type === HEADERS).length > n);
    const h = this.frames.filter((f) => f.type === HEADERS)[n] as Frame;
    const parts = [h.payload];
    let i = this.frames.indexOf(h);
    let last = h;
    while ((last.flags & 0x4) === 0) {
      last = await this.next((f) => f.type === CONTINUATION && f.id === h.id, i + 1);
      i = this.frames.indexOf(last);
      parts.push(last.payload);
    }
    return { id: h.id, fields: { ...this.decoder.decode(Buffer.concat(parts)) } };
  }

  async waitClosed(): Promise<void> {
    if (!this.closed) await once(this.socket, 'close');
  }
}

interface Peer {
  readonly path: string;
  readonly conns: PeerConn[];
  conn(i?: number): Promise<PeerConn>;
  close(): Promise<void>;
}

let serial = 0;
async function startPeer(): Promise<Peer> {
  const path = join(dir, `p${serial++}.sock`);
  const conns: PeerConn[] = [];
  let wake: (() => void) | undefined;
  const server = net.createServer((s) => {
    conns.push(new PeerConn(s));
    wake?.();
  });
  server.listen(path);
  await once(server, 'listening');
  return {
    path,
    conns,
    async conn(i = 0) {
      while (conns[i] === undefined) {
        await new Promise<void>((r) => {
          wake = r;
        });
      }
      return conns[i] as PeerConn;
    },
    async close() {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function channel(peer: Peer): GrpcChannel {
  return new GrpcChannel({ connect: unixConnector(peer.path), authority: 'localhost', headers: { 'workload.spiffe.io': 'true' } });
}

/** Runs `body` with a new peer and a channel to it, both closed after. */
async function withPeer(body: (peer: Peer, ch: GrpcChannel) => Promise<void>): Promise<void> {
  const peer = await startPeer();
  const ch = channel(peer);
  try {
    await body(peer, ch);
  } finally {
    ch.close();
    await peer.close();
  }
}

const isStatus =
  (code: number, message?: RegExp) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof GrpcCallError, `not a GrpcCallError: ${String(e)}`);
    assert.equal(e.grpcCode, code, `grpcCode of "${e.grpcMessage}"`);
    if (message !== undefined) assert.match(e.grpcMessage, message);
    return true;
  };

/** Raw events of one stream on a bare connection. */
function recorder(): { events: StreamEvents; log: string[]; data: Buffer[]; ended: Promise<StreamEnd> } {
  const log: string[] = [];
  const data: Buffer[] = [];
  let done!: (e: StreamEnd) => void;
  const ended = new Promise<StreamEnd>((r) => {
    done = r;
  });
  return {
    log,
    data,
    ended,
    events: {
      response: (h) => log.push(`response ${h[':status']}`),
      data: (c) => {
        data.push(c);
        log.push(`data ${c.length}`);
      },
      trailers: (h) => log.push(`trailers ${h['grpc-status']}`),
      close: (e) => {
        log.push('close');
        done(e);
      },
    },
  };
}

function session(peer: Peer): TransportSession {
  return socketTransport().connect(unixConnector(peer.path), 'localhost');
}
const HEAD = { path: '/SpiffeWorkloadAPI/FetchX509SVID', fields: [['content-type', 'application/grpc']] as const, fixed: true };

test('preface, SETTINGS and a window for the connection; SETTINGS and PING acknowledged; request headers as sent', T, async () => {
  await withPeer(async (peer, ch) => {
    const call = ch.unary(m.fetchJWTSVID, { audience: ['aud'] });
    const c = await peer.conn();
    const settings = await c.next((f) => f.type === SETTINGS);
    assert.equal(c.preface, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    assert.deepEqual(
      settings.payload,
      settingsPayload([
        [2, 0],
        [4, STREAM_WINDOW],
      ]),
    );
    const wu = await c.next((f) => f.type === WINDOW_UPDATE && f.id === 0);
    assert.equal(wu.payload.readUInt32BE(0), CONNECTION_WINDOW - 65_535);
    const req = await c.request();
    assert.equal(req.id, 1);
    assert.deepEqual(req.fields, {
      ':method': 'POST',
      ':scheme': 'http',
      ':path': '/SpiffeWorkloadAPI/FetchJWTSVID',
      ':authority': 'localhost',
      'content-type': 'application/grpc',
      te: 'trailers',
      'workload.spiffe.io': 'true',
    });
    const body = await c.next((f) => f.type === DATA && f.id === 1);
    assert.equal(body.flags & 1, 1, 'END_STREAM on the request body');
    c.write(frame(SETTINGS, 0, 0, settingsPayload([[3, 100]])), frame(PING, 0, 0, Buffer.from('12345678')));
    await c.next((f) => f.type === SETTINGS && f.flags === 1 && f.payload.length === 0);
    const pong = await c.next((f) => f.type === PING);
    assert.equal(pong.flags, 1);
    assert.equal(pong.payload.toString(), '12345678');
    c.write(...okResponse(1, 't.o.k'));
    assert.equal((await call).svids[0]?.svid, 't.o.k');
  });
});

test('a response cut at every byte, with padding, priority fields, CONTINUATION and unknown frames, is read whole', T, async () => {
  await withPeer(async (peer, ch) => {
    const call = ch.unary(m.fetchJWTSVID, { audience: ['aud'] });
    const c = await peer.conn();
    const { id } = await c.request();
    const msg = jwtMessage('cut.at.every.byte');
    const trailers = encodeHeaderBlock([
      ['grpc-status', '0'],
      ['x-long', 'v'.repeat(40)],
    ]);
    const bytes = Buffer.concat([
      // HEADERS, PADDED | PRIORITY | END_HEADERS: pad length 3, 5 bytes of priority, block, 3 bytes of padding.
      frame(HEADERS, 0x8 | 0x20 | 0x4, id, Buffer.concat([Buffer.from([3]), u32(0), Buffer.from([16]), OK_HEADERS, Buffer.alloc(3)])),
      frame(0x42, 0, 0, Buffer.from('unknown frame types are ignored')),
      // DATA, PADDED: the message in two frames, the first padded by 10.
      frame(DATA, 0x8, id, Buffer.concat([Buffer.from([10]), msg.subarray(0, 7), Buffer.alloc(10)])),
      frame(DATA, 0, id, msg.subarray(7)),
      // Trailers in HEADERS + 2 CONTINUATIONs, END_STREAM on the HEADERS.
      frame(HEADERS, 0x1, id, trailers.subarray(0, 5)),
      frame(CONTINUATION, 0, id, trailers.subarray(5, 20)),
      frame(CONTINUATION, 0x4, id, trailers.subarray(20)),
    ]);
    for (const b of bytes) {
      c.write(Buffer.from([b]));
      await tick();
    }
    assert.equal((await call).svids[0]?.svid, 'cut.at.every.byte');
  });
});

test('HPACK: the peer dynamic table carries across responses; Huffman strings (RFC 7541 C.4); size updates', T, async () => {
  // RFC 7541 Appendix C.4: three request blocks with Huffman coding and a growing dynamic table.
  const d = new HpackDecoder();
  assert.deepEqual(
    { ...d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')) },
    { ':method': 'GET', ':scheme': 'http', ':path': '/', ':authority': 'www.example.com' },
  );
  assert.deepEqual(
    { ...d.decode(hex('8286 84be 5886 a8eb 1064 9cbf')) },
    {
      ':method': 'GET',
      ':scheme': 'http',
      ':path': '/',
      ':authority': 'www.example.com',
      'cache-control': 'no-cache',
    },
  );
  assert.deepEqual(
    { ...d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')) },
    {
      ':method': 'GET',
      ':scheme': 'https',
      ':path': '/index.html',
      ':authority': 'www.example.com',
      'custom-key': 'custom-value',
    },
  );
  // A size update to 0 empties the table: index 62 is gone.
  assert.throws(() => d.decode(hex('20 be')), HpackError);
  assert.throws(() => new HpackDecoder().decode(hex('3fe21f')), /above the 4096 allowed/);
  assert.throws(() => new HpackDecoder().decode(hex('88 20')), /after a header field/);

  await withPeer(async (peer, ch) => {
    const first = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
    const c = await peer.conn();
    const r1 = await c.request(0);
    // :status 200 indexed; content-type with incremental indexing (entry 62); grpc-status 0 likewise (then 62, content-type 63).
    const ct = Buffer.concat([Buffer.from([0x40 | 31, 16]), Buffer.from('application/grpc')]);
    const status = Buffer.concat([Buffer.from([0x40, 11]), Buffer.from('grpc-status'), Buffer.from([1]), Buffer.from('0')]);
    c.write(frame(HEADERS, 4, r1.id, Buffer.concat([Buffer.from([0x88]), ct])), frame(DATA, 0, r1.id, jwtMessage('one')), frame(HEADERS, 5, r1.id, status));
    assert.equal((await first).svids[0]?.svid, 'one');
    const second = ch.unary(m.fetchJWTSVID, { audience: ['b'] });
    const r2 = await c.request(1);
    // Both fields by their dynamic indexes only.
    c.write(
      frame(HEADERS, 4, r2.id, Buffer.from([0x88, 0x80 | 63])),
      frame(DATA, 0, r2.id, jwtMessage('two')),
      frame(HEADERS, 5, r2.id, Buffer.from([0x80 | 62])),
    );
    assert.equal((await second).svids[0]?.svid, 'two');
  });
});

test('flow control: a request body waits for the peer window; received DATA is acknowledged, not while paused', T, async () => {
  await withPeer(async (peer, ch) => {
    // A first call on the default window (65,535), then the peer grants 10 bytes per stream.
    const warm = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
    const c = await peer.conn();
    const r0 = await c.request(0);
    c.write(...okResponse(r0.id, 'warm'));
    await warm;
    c.write(frame(SETTINGS, 0, 0, settingsPayload([[4, 10]])));
    await c.next((f) => f.type === SETTINGS && f.flags === 1);
    // A 300-byte ValidateJWTSVID request goes out as the window allows, END_STREAM on its last byte.
    const call = ch.unary(m.validateJWTSVID, { audience: 'aud', svid: 'x'.repeat(300) });
    const { id } = await c.request(1);
    const sent = (): Buffer => Buffer.concat(c.frames.filter((f) => f.type === DATA && f.id === id).map((f) => f.payload));
    await c.next((f) => f.type === DATA && f.id === id);
    await tick();
    assert.equal(sent().length, 10);
    c.write(frame(WINDOW_UPDATE, 0, id, u32(100)));
    await c.next(() => sent().length === 110);
    await tick();
    assert.equal(sent().length, 110);
    assert.ok(!c.frames.some((f) => f.type === DATA && f.id === id && (f.flags & 1) === 1), 'no END_STREAM before the whole body');
    c.write(frame(WINDOW_UPDATE, 0, id, u32(1000)));
    await c.next((f) => f.type === DATA && f.id === id && (f.flags & 1) === 1);
    assert.ok(sent().length > 300);
    assert.equal(sent().readUInt32BE(1), sent().length - 5);
    c.write(
      frame(HEADERS, 4, id, OK_HEADERS),
      frame(DATA, 0, id, grpcMessage(toBinary(ValidateJWTSVIDResponseSchema, create(ValidateJWTSVIDResponseSchema, { spiffeId: 'spiffe://example.org/a' })))),
      frame(HEADERS, 5, id, OK_TRAILERS),
    );
    assert.equal((await call).spiffeId, 'spiffe://example.org/a');
  });

  const peer2 = await startPeer();
  const s = session(peer2);
  try {
    const rec = recorder();
    const stream = s.request(HEAD, grpcMessage(new Uint8Array(0)), rec.events);
    const c = await peer2.conn();
    const { id } = await c.request();
    const chunk = Buffer.alloc(16_384, 1);
    const send = (n: number): Buffer[] => Array.from({ length: n }, () => frame(DATA, 0, id, chunk));
    // 40 frames (640 KiB) while paused: no window granted for the stream, the connection's only.
    stream.pause();
    c.write(frame(HEADERS, 4, id, OK_HEADERS), ...send(40));
    while (rec.data.length < 40) await tick();
    await tick();
    await tick();
    assert.ok(!c.frames.some((f) => f.type === WINDOW_UPDATE && f.id === id), 'no stream window while paused');
    stream.resume();
    const wu = await c.next((f) => f.type === WINDOW_UPDATE && f.id === id);
    assert.equal(wu.payload.readUInt32BE(0), 40 * 16_384);
    // Then past the stream's window while paused: FLOW_CONTROL_ERROR for the stream, the connection stays.
    stream.pause();
    c.write(...send(STREAM_WINDOW / 16_384 + 1));
    const end = await rec.ended;
    assert.equal(end.rstCode, H2Code.FLOW_CONTROL_ERROR);
    assert.ok(end.error instanceof H2ProtocolError);
    const rst = await c.next((f) => f.type === RST_STREAM && f.id === id);
    assert.equal(rst.payload.readUInt32BE(0), H2Code.FLOW_CONTROL_ERROR);
    assert.ok(s.usable);
  } finally {
    s.destroy();
    await peer2.close();
  }
});

test('CONTINUATION out: a header block larger than the peer frame size is split', T, async () => {
  const peer = await startPeer();
  const big = 'y'.repeat(40_000);
  const ch = new GrpcChannel({
    connect: unixConnector(peer.path),
    authority: 'localhost',
    interceptors: [
      (next) => (req) => {
        req.header.set('x-big', big);
        return next(req);
      },
    ],
  });
  try {
    const call = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
    const c = await peer.conn();
    const req = await c.request();
    assert.equal(req.fields['x-big'], big);
    assert.equal(c.frames.filter((f) => f.type === CONTINUATION).length, 2);
    assert.ok(c.frames.every((f) => f.payload.length <= 16_384));
    c.write(...okResponse(req.id, 'big'));
    assert.equal((await call).svids[0]?.svid, 'big');
  } finally {
    ch.close();
    await peer.close();
  }
});

test('GOAWAY: a stream above its last id is sent again on a new connection (once), those below finish; the old connection closes when done', T, async () => {
  await withPeer(async (peer, ch) => {
    const a = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
    const b = ch.unary(m.fetchJWTSVID, { audience: ['b'] });
    const c = await peer.conn();
    const ra = await c.request(0);
    const rb = await c.request(1);
    assert.deepEqual([ra.id, rb.id], [1, 3]);
    c.write(frame(GOAWAY, 0, 0, Buffer.concat([u32(1, 0), Buffer.from('draining')])));
    // The server never processed b: gRPC's transparent retry sends it again on a new connection.
    const c2 = await peer.conn(1);
    const rb2 = await c2.request(0);
    assert.equal(rb2.id, 1);
    assert.equal(rb2.fields[':path'], '/SpiffeWorkloadAPI/FetchJWTSVID');
    c2.write(...okResponse(1, 'retried'));
    assert.equal((await b).svids[0]?.svid, 'retried');
    c.write(...okResponse(1, 'finished'));
    assert.equal((await a).svids[0]?.svid, 'finished');
    // No stream left on the first connection: the client closes it.
    await c.waitClosed();
    // One retry per call: above the last id of a GOAWAY on the new connection too, the call fails Unavailable.
    const d = ch.unary(m.fetchJWTSVID, { audience: ['d'] });
    const rd = await c2.request(1);
    assert.equal(rd.id, 3);
    c2.write(frame(GOAWAY, 0, 0, u32(1, 0)));
    const c3 = await peer.conn(2);
    const rd2 = await c3.request(0);
    c3.write(frame(GOAWAY, 0, 0, u32(0, 0)));
    assert.equal(rd2.id, 1);
    await assert.rejects(d, isStatus(14, /before a status was received \(HTTP\/2 code 7\)/));
    assert.equal(peer.conns.length, 3);
  });
});

test('stream ids exhausted: the connection is not used for another call and is closed once its last stream ends', T, async () => {
  const peer = await startPeer();
  // The last two client stream ids: 2^31-3 and 2^31-1.
  const s = socketTransport({ firstStreamId: 0x7ffffffd }).connect(unixConnector(peer.path), 'localhost');
  try {
    const a = recorder();
    const b = recorder();
    s.request(HEAD, grpcMessage(new Uint8Array(0)), a.events);
    assert.equal(s.usable, true, 'one id left');
    s.request(HEAD, grpcMessage(new Uint8Array(0)), b.events);
    assert.equal(s.usable, false, 'no id left');
    const c = await peer.conn();
    const [ra, rb] = [await c.request(0), await c.request(1)];
    assert.deepEqual([ra.id, rb.id], [0x7ffffffd, 0x7fffffff]);
    // The first stream ends; the other is still open, so the connection stays: b gets its answer on it.
    c.write(...okResponse(ra.id, 'first'));
    assert.deepEqual(await a.ended, { rstCode: H2Code.NO_ERROR, lost: false });
    c.write(...okResponse(rb.id, 'last'));
    assert.deepEqual(await b.ended, { rstCode: H2Code.NO_ERROR, lost: false });
    assert.ok(b.log.includes('trailers 0'), b.log.join());
    // The last stream ended: the client says goodbye (GOAWAY, NO_ERROR) and closes.
    const goaway = await c.next((f) => f.type === GOAWAY);
    assert.equal(goaway.payload.readUInt32BE(4), H2Code.NO_ERROR);
    await c.waitClosed();
  } finally {
    s.destroy();
    await peer.close();
  }
});

test(
  'RST_STREAM: the peer refusing twice is Unavailable (one transparent retry), resetting with an error is Internal; cancelling sends CANCEL',
  T,
  async () => {
    await withPeer(async (peer, ch) => {
      const refused = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
      const c = await peer.conn();
      const r1 = await c.request(0);
      c.write(frame(RST_STREAM, 0, r1.id, u32(H2Code.REFUSED_STREAM)));
      // Refused: the server never processed it, so it is sent once more (the connection is still usable); refused again, it fails.
      const r1again = await c.request(1);
      assert.equal(r1again.id, 3);
      c.write(frame(RST_STREAM, 0, r1again.id, u32(H2Code.REFUSED_STREAM)));
      await assert.rejects(refused, isStatus(14));
      const failed = ch.unary(m.fetchJWTSVID, { audience: ['b'] });
      const r2 = await c.request(2);
      c.write(frame(HEADERS, 4, r2.id, OK_HEADERS), frame(RST_STREAM, 0, r2.id, u32(H2Code.INTERNAL_ERROR)));
      await assert.rejects(failed, isStatus(13, /HTTP\/2 code 2/));
      const ac = new AbortController();
      const cancelled = ch.unary(m.fetchJWTSVID, { audience: ['c'] }, { signal: ac.signal });
      const r3 = await c.request(3);
      ac.abort();
      await assert.rejects(cancelled, isStatus(1));
      const rst = await c.next((f) => f.type === RST_STREAM && f.id === r3.id);
      assert.equal(rst.payload.readUInt32BE(0), H2Code.CANCEL);
      // Frames the peer sends on the reset stream are dropped; the connection goes on.
      c.write(frame(HEADERS, 4, r3.id, OK_HEADERS), frame(DATA, 0, r3.id, jwtMessage('late')));
      const ok = ch.unary(m.fetchJWTSVID, { audience: ['d'] });
      const r4 = await c.request(4);
      c.write(...okResponse(r4.id, 'on'));
      assert.equal((await ok).svids[0]?.svid, 'on');
      assert.equal(peer.conns.length, 1);
    });
  },
);

/** Malformed server input: what the peer sends after the request (stream 1), the GOAWAY code the client answers with, the cause named. */
const MALFORMED: readonly (readonly [string, (id: number) => Buffer, number, RegExp])[] = [
  ['an HTTP/1.1 answer', () => Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'), H2Code.FRAME_SIZE_ERROR, /frame size error.*above the 16384 allowed/],
  ['DATA on stream 0', () => frame(DATA, 0, 0, Buffer.from('x')), H2Code.PROTOCOL_ERROR, /DATA on stream 0/],
  ['DATA on a stream never opened', () => frame(DATA, 0, 7, Buffer.from('x')), H2Code.PROTOCOL_ERROR, /stream 7, which was never opened/],
  ['HEADERS with an unknown table index', (id) => frame(HEADERS, 4, id, hex('be')), H2Code.COMPRESSION_ERROR, /compression error.*invalid table index 62/],
  ['a Huffman string with bad padding', (id) => frame(HEADERS, 4, id, hex('40 81 00 01 30')), H2Code.COMPRESSION_ERROR, /Huffman padding/],
  ['a truncated header block', (id) => frame(HEADERS, 4, id, hex('40 0a 61')), H2Code.COMPRESSION_ERROR, /truncated string/],
  ['PUSH_PROMISE', (id) => frame(PUSH_PROMISE, 4, id, u32(2)), H2Code.PROTOCOL_ERROR, /PUSH_PROMISE/],
  ['CONTINUATION without HEADERS', (id) => frame(CONTINUATION, 4, id, OK_HEADERS), H2Code.PROTOCOL_ERROR, /without a header block/],
  [
    'a frame between HEADERS and its CONTINUATION',
    (id) => Buffer.concat([frame(HEADERS, 0, id, OK_HEADERS), frame(PING, 0, 0, Buffer.alloc(8))]),
    H2Code.PROTOCOL_ERROR,
    /middle of a header block/,
  ],
  ['padding longer than the frame', (id) => frame(DATA, 0x8, id, Buffer.from([5, 1, 2])), H2Code.PROTOCOL_ERROR, /padding of 5 bytes/],
  ['PING of 7 bytes', () => frame(PING, 0, 0, Buffer.alloc(7)), H2Code.FRAME_SIZE_ERROR, /PING of 7 bytes/],
  ['SETTINGS of 5 bytes', () => frame(SETTINGS, 0, 0, Buffer.alloc(5)), H2Code.FRAME_SIZE_ERROR, /SETTINGS of 5 bytes/],
  [
    'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1',
    () => frame(SETTINGS, 0, 0, settingsPayload([[4, 0x80000000]])),
    H2Code.FLOW_CONTROL_ERROR,
    /INITIAL_WINDOW_SIZE/,
  ],
  ['SETTINGS_MAX_FRAME_SIZE below 16384', () => frame(SETTINGS, 0, 0, settingsPayload([[5, 100]])), H2Code.PROTOCOL_ERROR, /MAX_FRAME_SIZE 100/],
  ['WINDOW_UPDATE of 0 on the connection', () => frame(WINDOW_UPDATE, 0, 0, u32(0)), H2Code.PROTOCOL_ERROR, /WINDOW_UPDATE of 0/],
  ['a connection window above 2^31-1', () => frame(WINDOW_UPDATE, 0, 0, u32(0x7fffffff)), H2Code.FLOW_CONTROL_ERROR, /above 2\^31-1/],
  ['RST_STREAM on stream 0', () => frame(RST_STREAM, 0, 0, u32(0)), H2Code.PROTOCOL_ERROR, /RST_STREAM on stream 0/],
  ['GOAWAY of 4 bytes', () => frame(GOAWAY, 0, 0, u32(0)), H2Code.FRAME_SIZE_ERROR, /GOAWAY of 4 bytes/],
];

test('malformed server input: GOAWAY with the RFC code, the call fails Unavailable naming the cause, the next call dials again', T, async () => {
  for (const [what, bytes, code, cause] of MALFORMED) {
    await withPeer(async (peer, ch) => {
      const call = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
      const c = await peer.conn();
      const { id } = await c.request();
      c.write(bytes(id));
      await assert.rejects(call, isStatus(14, cause), what);
      const goaway = await c.next((f) => f.type === GOAWAY);
      assert.equal(goaway.payload.readUInt32BE(4), code, what);
      await c.waitClosed();
      // A new connection for the next call.
      const next = ch.unary(m.fetchJWTSVID, { audience: ['b'] });
      const c2 = await peer.conn(1);
      const r = await c2.request();
      c2.write(...okResponse(r.id, 'ok'));
      assert.equal((await next).svids[0]?.svid, 'ok', what);
    });
  }
});

test('stream-level faults: DATA before the response headers, a second header block without END_STREAM', T, async () => {
  await withPeer(async (peer, ch) => {
    const a = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
    const c = await peer.conn();
    const ra = await c.request(0);
    c.write(frame(DATA, 0, ra.id, jwtMessage('early')));
    await assert.rejects(a, isStatus(14, /DATA before the response headers/));
    assert.equal((await c.next((f) => f.type === RST_STREAM && f.id === ra.id)).payload.readUInt32BE(0), H2Code.PROTOCOL_ERROR);
    const b = ch.unary(m.fetchJWTSVID, { audience: ['b'] });
    const rb = await c.request(1);
    c.write(frame(HEADERS, 4, rb.id, OK_HEADERS), frame(HEADERS, 4, rb.id, OK_TRAILERS));
    await assert.rejects(b, isStatus(14, /second header block without END_STREAM/));
    assert.equal(peer.conns.length, 1, 'the connection survives stream errors');
  });
});

test('the peer hanging up mid-frame or mid-response: Unavailable, no hang', T, async () => {
  await withPeer(async (peer, ch) => {
    const a = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
    const c = await peer.conn();
    const { id } = await c.request();
    const data = frame(DATA, 0, id, jwtMessage('cut'));
    c.socket.end(Buffer.concat([frame(HEADERS, 4, id, OK_HEADERS), data.subarray(0, 12)]));
    await assert.rejects(a, isStatus(14));
    const s = session(peer);
    const rec = recorder();
    s.request(HEAD, grpcMessage(new Uint8Array(0)), rec.events);
    const c2 = await peer.conn(1);
    c2.socket.destroy();
    const end = await rec.ended;
    assert.equal(end.lost, true);
    assert.equal(s.usable, false);
    // A request on the dead connection ends at once, as lost.
    const rec2 = recorder();
    s.request(HEAD, grpcMessage(new Uint8Array(0)), rec2.events);
    assert.equal((await rec2.ended).lost, true);
  });
});

test("a dialer that ignores onread: the socket's own chunks are read, a frame cut across them too", T, async () => {
  const peer = await startPeer();
  const ch = new GrpcChannel({ connect: () => net.connect({ path: peer.path }), authority: 'localhost' });
  try {
    for (const token of ['one.two.three', 'four.five.six']) {
      const call = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
      const c = await peer.conn();
      const { id } = await c.request(token === 'one.two.three' ? 0 : 1);
      const bytes = Buffer.concat(okResponse(id, token));
      for (let at = 0; at < bytes.length; at += 7) {
        c.write(bytes.subarray(at, at + 7));
        await tick();
      }
      assert.equal((await call).svids[0]?.svid, token);
    }
    assert.equal(peer.conns.length, 1);
  } finally {
    ch.close();
    await peer.close();
  }
});
