/**
 * The lean gRPC transport against a real `node:http2` server on a Unix socket: framing, status
 * handling, deadlines, cancellation, lost connections and the message size limit; every test
 * once per HTTP/2 client (the SDK's own on `net.Socket`, and `node:http2`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { JWTSVIDRequestSchema, JWTSVIDResponseSchema, SpiffeWorkloadAPI, X509BundlesResponseSchema } from './proto/workload/workload_pb.ts';
import { decodeGrpcMessage, encodeGrpcTimeout, GrpcCallError, GrpcChannel, unixConnector, type GrpcTransportKind } from './grpc-http2.ts';
import { WorkloadApiClient, WorkloadApiError } from './client.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-grpc-h2-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Promise<Buffer>) => void | Promise<void>;

interface TestServer {
  readonly path: string;
  readonly sessions: Set<http2.ServerHttp2Session>;
  handler: Handler;
  close(): Promise<void>;
}

let serial = 0;
async function startServer(handler: Handler): Promise<TestServer> {
  const path = join(dir, `s${serial++}.sock`);
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const ts: TestServer = {
    path,
    sessions,
    handler,
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => undefined);
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const body = once(stream, 'end').then(() => Buffer.concat(chunks));
    void ts.handler(stream, headers, body);
  });
  server.listen(path);
  await once(server, 'listening');
  return ts;
}

const frame = (payload: Uint8Array): Buffer => {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt32BE(payload.length, 1);
  b.set(payload, 5);
  return b;
};
const okHeaders = { ':status': 200, 'content-type': 'application/grpc' };
const jwtResponse = (token: string): Buffer =>
  frame(toBinary(JWTSVIDResponseSchema, create(JWTSVIDResponseSchema, { svids: [{ spiffeId: 'spiffe://example.org/a', svid: token }] })));
const bundlesResponse = (n: number): Buffer =>
  frame(toBinary(X509BundlesResponseSchema, create(X509BundlesResponseSchema, { bundles: { [`spiffe://td${n}.example`]: new Uint8Array(300).fill(n) } })));
const m = SpiffeWorkloadAPI.method;
/** A broken transport fails its test instead of hanging the run. */
const T = { timeout: 10_000 };

/** The HTTP/2 client of the tests running now (set by the describe block of each). */
let transport: GrpcTransportKind = 'socket';

function channel(ts: TestServer, maxMessageBytes?: number): GrpcChannel {
  return new GrpcChannel({
    transport,
    connect: unixConnector(ts.path),
    authority: 'localhost',
    headers: { 'workload.spiffe.io': 'true' },
    ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
  });
}

const isStatus =
  (code: number, message?: string | RegExp) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof GrpcCallError, `not a GrpcCallError: ${String(e)}`);
    assert.equal(e.grpcCode, code, `grpcCode of "${e.grpcMessage}"`);
    if (typeof message === 'string') assert.equal(e.grpcMessage, message);
    else if (message !== undefined) assert.match(e.grpcMessage, message);
    return true;
  };

/** Reads a FetchX509Bundles stream to its end, pushing each message's trust domains to `got`. */
async function collectBundles(ch: GrpcChannel, got: string[]): Promise<void> {
  for await (const r of ch.serverStream(m.fetchX509Bundles, {})) got.push(...Object.keys(r.bundles));
}

/** Writes `data` a few bytes at a time, each write its own DATA frame, cutting length prefixes and messages apart. */
async function writeInPieces(stream: http2.ServerHttp2Stream, data: Buffer, sizes: readonly number[]): Promise<void> {
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length] as number;
    stream.write(data.subarray(off, off + n));
    off += n;
    await tick();
  }
}

for (const kind of ['socket', 'node:http2'] as const) {
  describe(`over ${kind}`, () => {
    before(() => {
      transport = kind;
    });
    test('unary request carries the gRPC headers and one framed message; a response cut at any byte is reassembled', T, async () => {
      let seen: http2.IncomingHttpHeaders | undefined;
      let request: Buffer | undefined;
      const ts = await startServer(async (stream, headers, body) => {
        seen = headers;
        request = await body;
        stream.respond(okHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        await writeInPieces(stream, jwtResponse('header.payload.signature'), [1, 2, 3, 7]);
        stream.end();
      });
      const ch = channel(ts);
      try {
        const resp = await ch.unary(m.fetchJWTSVID, { audience: ['aud'], spiffeId: '' }, { timeoutMs: 5000 });
        assert.equal(resp.svids[0]?.svid, 'header.payload.signature');
        assert.equal(seen?.[':method'], 'POST');
        assert.equal(seen?.[':path'], '/SpiffeWorkloadAPI/FetchJWTSVID');
        assert.equal(seen?.['content-type'], 'application/grpc');
        assert.equal(seen?.te, 'trailers');
        assert.equal(seen?.['workload.spiffe.io'], 'true');
        assert.equal(seen?.['grpc-timeout'], '5000m');
        assert.ok(request !== undefined);
        assert.equal(request[0], 0);
        assert.equal(request.readUInt32BE(1), request.length - 5);
        assert.deepEqual(fromBinary(JWTSVIDRequestSchema, request.subarray(5)).audience, ['aud']);
      } finally {
        ch.close();
        await ts.close();
      }
    });

    test('server stream: messages split across DATA frames and several in one frame all arrive, in order', T, async () => {
      const ts = await startServer(async (stream) => {
        stream.respond(okHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        const all = Buffer.concat([bundlesResponse(1), bundlesResponse(2), bundlesResponse(3), bundlesResponse(4)]);
        // The first 2 messages byte-cut at odd places, the last 2 in a single write.
        const cut = bundlesResponse(1).length * 2;
        await writeInPieces(stream, all.subarray(0, cut), [3, 250, 1, 400]);
        stream.end(all.subarray(cut));
      });
      const ch = channel(ts);
      try {
        const got: string[] = [];
        await collectBundles(ch, got);
        assert.deepEqual(got, ['spiffe://td1.example', 'spiffe://td2.example', 'spiffe://td3.example', 'spiffe://td4.example']);
      } finally {
        ch.close();
        await ts.close();
      }
    });

    test('trailers-only error: status and percent-decoded message, as WorkloadApiError through the client', T, async () => {
      const ts = await startServer((stream) => {
        stream.respond({ ...okHeaders, 'grpc-status': '7', 'grpc-message': 'no%20identity%20issued%20%E2%9C%93' }, { endStream: true });
      });
      const ch = channel(ts);
      const client = new WorkloadApiClient({ address: `unix://${ts.path}`, transport });
      try {
        await assert.rejects(ch.unary(m.fetchJWTSVID, { audience: ['a'] }), isStatus(7, 'no identity issued ✓'));
        await assert.rejects(
          (async () => {
            for await (const _ of ch.serverStream(m.fetchX509SVID, {})) assert.fail('no message expected');
          })(),
          isStatus(7, 'no identity issued ✓'),
        );
        await assert.rejects(client.fetchJwtSvid({ audience: 'a' }), (e: unknown) => {
          assert.ok(e instanceof WorkloadApiError);
          assert.equal(e.code, 'ERR_WORKLOAD_API');
          assert.equal(e.grpcCode, 7);
          assert.equal(e.grpcMessage, 'no identity issued ✓');
          assert.equal(e.message, 'workloadapi: rpc error: code = PermissionDenied desc = no identity issued ✓');
          return true;
        });
      } finally {
        client.close();
        ch.close();
        await ts.close();
      }
    });

    test('error status in trailers after messages; HTTP errors without grpc-status map as gRPC says', T, async () => {
      let mode: 'trailers' | '404' | 'html' = 'trailers';
      const ts = await startServer(async (stream) => {
        if (mode === '404') {
          stream.respond({ ':status': 404 }, { endStream: true });
          return;
        }
        if (mode === 'html') {
          stream.respond({ ':status': 200, 'content-type': 'text/html' });
          stream.end('<html>');
          return;
        }
        stream.respond(okHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '3', 'grpc-message': 'bad%' }));
        stream.end(bundlesResponse(1));
      });
      const ch = channel(ts);
      try {
        const got: string[] = [];
        await assert.rejects(collectBundles(ch, got), isStatus(3, 'bad%'));
        assert.deepEqual(got, ['spiffe://td1.example']);
        mode = '404';
        await assert.rejects(ch.unary(m.fetchJWTSVID, { audience: ['a'] }), isStatus(12, /404/));
        mode = 'html';
        await assert.rejects(ch.unary(m.fetchJWTSVID, { audience: ['a'] }), isStatus(2, /content-type "text\/html"/));
      } finally {
        ch.close();
        await ts.close();
      }
    });

    test('deadline: grpc-timeout is sent, the call fails DeadlineExceeded and the stream is reset', T, async () => {
      let reset: Promise<number> | undefined;
      let timeout: string | undefined;
      const ts = await startServer((stream, headers) => {
        timeout = headers['grpc-timeout'] as string;
        reset = once(stream, 'close').then(() => stream.rstCode);
        stream.respond(okHeaders); // never answers
      });
      const ch = channel(ts);
      try {
        // 500 ms, not less: under load a shorter deadline can pass before the server has seen the
        // request at all, and then there is no header to read and no stream to reset.
        await assert.rejects(ch.unary(m.fetchJWTSVID, { audience: ['a'] }, { timeoutMs: 500 }), isStatus(4));
        assert.equal(timeout, '500m');
        assert.equal(await reset, http2.constants.NGHTTP2_CANCEL);
        assert.equal(encodeGrpcTimeout(99_999_999), '99999999m');
        assert.equal(encodeGrpcTimeout(100_000_000), '100000S');
        assert.equal(encodeGrpcTimeout(1e12), '277778H');
        assert.equal(encodeGrpcTimeout(1e16), '99999999H');
        assert.equal(decodeGrpcMessage('a%20b'), 'a b');
      } finally {
        ch.close();
        await ts.close();
      }
    });

    test('cancellation: aborting the signal rejects Canceled and sends RST_STREAM CANCEL; leaving a stream loop cancels it', T, async () => {
      const resets: Promise<number>[] = [];
      const started: (() => void)[] = [];
      const ts = await startServer((stream) => {
        resets.push(once(stream, 'close').then(() => stream.rstCode));
        stream.respond(okHeaders);
        stream.write(bundlesResponse(1));
        started.shift()?.();
      });
      const ch = channel(ts);
      try {
        const ac = new AbortController();
        const arrived = new Promise<void>((r) => started.push(r));
        const call = ch.unary(m.fetchJWTSVID, { audience: ['a'] }, { signal: ac.signal });
        await arrived;
        ac.abort();
        await assert.rejects(call, isStatus(1));
        assert.equal(await resets[0], http2.constants.NGHTTP2_CANCEL);

        for await (const r of ch.serverStream(m.fetchX509Bundles, {})) {
          assert.ok('spiffe://td1.example' in r.bundles);
          break;
        }
        assert.equal(await resets[1], http2.constants.NGHTTP2_CANCEL);
        await assert.rejects(ch.unary(m.fetchJWTSVID, { audience: ['a'] }, { signal: AbortSignal.abort() }), isStatus(1));
      } finally {
        ch.close();
        await ts.close();
      }
    });

    test('server going away mid-stream is Unavailable; the next call dials a new session', T, async () => {
      let first = true;
      let firstSession: http2.Http2Session | undefined;
      const ts = await startServer((stream) => {
        if (first) {
          first = false;
          stream.respond(okHeaders);
          stream.write(bundlesResponse(1));
          firstSession = stream.session;
          return;
        }
        stream.respond(okHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(jwtResponse('x.y.z'));
      });
      const ch = channel(ts);
      try {
        const got: string[] = [];
        // the server goes away once the client has the first message
        const collect = async (): Promise<void> => {
          for await (const r of ch.serverStream(m.fetchX509Bundles, {})) {
            got.push(...Object.keys(r.bundles));
            firstSession?.destroy();
          }
        };
        await assert.rejects(collect(), isStatus(14));
        assert.deepEqual(got, ['spiffe://td1.example']);
        const resp = await ch.unary(m.fetchJWTSVID, { audience: ['a'] });
        assert.equal(resp.svids[0]?.svid, 'x.y.z');
      } finally {
        ch.close();
        await ts.close();
      }
      // Nothing listening any more: Unavailable, and a closed channel: Canceled.
      const gone = channel(ts);
      await assert.rejects(gone.unary(m.fetchJWTSVID, { audience: ['a'] }), isStatus(14, /connection error/));
      gone.close();
      await assert.rejects(gone.unary(m.fetchJWTSVID, { audience: ['a'] }), isStatus(1));
    });

    test('transparent retry: a call above the GOAWAY last stream id is sent again on a new connection; refused twice is Unavailable', T, async () => {
      const sessions = new Set<http2.Http2Session>();
      let held: http2.ServerHttp2Stream | undefined;
      const answer = (stream: http2.ServerHttp2Stream, token: string): void => {
        stream.respond(okHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(jwtResponse(token));
      };
      const ts = await startServer((stream, _headers, body) => {
        body.catch(() => undefined); // stream 3 ends with the first connection, unanswered
        sessions.add(stream.session as http2.Http2Session);
        if (sessions.size > 1) return answer(stream, `retried on connection ${sessions.size}`);
        if (stream.id === 1) {
          held = stream;
          return;
        }
        // The second call (stream 3) is on the wire: the server drains the connection having
        // processed stream 1 only, as the guard does when the client resets streams too fast.
        stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
        if (held !== undefined) answer(held, 'processed');
      });
      const ch = channel(ts);
      try {
        const a = ch.unary(m.fetchJWTSVID, { audience: ['a'] });
        const b = ch.unary(m.fetchJWTSVID, { audience: ['b'] });
        assert.equal((await a).svids[0]?.svid, 'processed');
        assert.equal((await b).svids[0]?.svid, 'retried on connection 2');
        assert.equal(sessions.size, 2);
      } finally {
        ch.close();
        await ts.close();
      }

      // A server that refuses every stream: the call is sent twice (one retry), then fails Unavailable.
      let refused = 0;
      const ts2 = await startServer((stream, _headers, body) => {
        body.catch(() => undefined); // the refused stream never ends its body
        refused++;
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      });
      const ch2 = channel(ts2);
      try {
        await assert.rejects(ch2.unary(m.fetchJWTSVID, { audience: ['a'] }), isStatus(14, /HTTP\/2 code 7/));
        assert.equal(refused, 2);
        // The retry allowance is per call: the next call is sent twice again.
        await assert.rejects(ch2.first(m.fetchX509SVID, {}), isStatus(14));
        assert.equal(refused, 4);
      } finally {
        ch2.close();
        await ts2.close();
      }
    });

    test('a message over the size limit is refused with ResourceExhausted and the stream reset', T, async () => {
      let reset: Promise<number> | undefined;
      const ts = await startServer((stream) => {
        reset = once(stream, 'close').then(() => stream.rstCode);
        stream.respond(okHeaders);
        // Only the length prefix of a 10 MB message: refused before its body is waited for.
        const head = Buffer.alloc(5);
        head.writeUInt32BE(10 * 1024 * 1024, 1);
        stream.write(head);
      });
      const small = channel(ts, 1000);
      const dflt = channel(ts);
      try {
        await assert.rejects(small.unary(m.fetchJWTSVID, { audience: ['a'] }), isStatus(8, 'received message larger than max (10485760 vs. 1000)'));
        assert.equal(await reset, http2.constants.NGHTTP2_CANCEL);
        await assert.rejects(dflt.unary(m.fetchJWTSVID, { audience: ['a'] }), isStatus(8, 'received message larger than max (10485760 vs. 4194304)'));
      } finally {
        small.close();
        dflt.close();
        await ts.close();
      }
    });

    test('first(): the first message of a stream, then RST_STREAM CANCEL; undefined for an empty stream; an error status rejects', T, async () => {
      const resets: Promise<number>[] = [];
      let mode: 'two' | 'empty' | 'error' | 'garbage' = 'two';
      const ts = await startServer((stream) => {
        resets.push(once(stream, 'close').then(() => stream.rstCode));
        if (mode === 'error') {
          stream.respond({ ...okHeaders, 'grpc-status': '7', 'grpc-message': 'withdrawn' }, { endStream: true });
          return;
        }
        stream.respond(okHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        if (mode === 'empty') stream.end();
        else if (mode === 'garbage') stream.write(frame(Buffer.from([0xff, 0xff, 0xff])));
        // Two messages in one write: only the first is decoded and handed back.
        else stream.write(Buffer.concat([bundlesResponse(1), bundlesResponse(2)]));
      });
      const ch = channel(ts);
      try {
        const r = await ch.first(m.fetchX509Bundles, {});
        assert.deepEqual(Object.keys(r?.bundles ?? {}), ['spiffe://td1.example']);
        assert.equal(await resets[0], http2.constants.NGHTTP2_CANCEL);
        // firstRaw(): the same first message, its bytes undecoded; a stream that is then cancelled too.
        const raw = await ch.firstRaw(m.fetchX509Bundles, {});
        assert.deepEqual(Buffer.from(raw ?? []), bundlesResponse(1).subarray(5));
        assert.equal(await resets[1], http2.constants.NGHTTP2_CANCEL);
        mode = 'garbage';
        await assert.rejects(ch.first(m.fetchX509Bundles, {}), isStatus(13, /^cannot decode the response/));
        assert.deepEqual(Buffer.from((await ch.firstRaw(m.fetchX509Bundles, {})) ?? []), Buffer.from([0xff, 0xff, 0xff]));
        mode = 'empty';
        assert.equal(await ch.first(m.fetchX509Bundles, {}), undefined);
        assert.equal(await ch.firstRaw(m.fetchX509Bundles, {}), undefined);
        mode = 'error';
        await assert.rejects(ch.first(m.fetchX509Bundles, {}), isStatus(7, 'withdrawn'));
        await assert.rejects(ch.first(m.fetchX509Bundles, {}, { signal: AbortSignal.abort() }), isStatus(1));
      } finally {
        ch.close();
        await ts.close();
      }
    });

    test('encoded requests are reused by content: each call still sends its own audiences and SPIFFE ID', T, async () => {
      const requests: { audience: string[]; spiffeId: string }[] = [];
      const ts = await startServer(async (stream, _headers, body) => {
        const req = fromBinary(JWTSVIDRequestSchema, (await body).subarray(5));
        requests.push({ audience: req.audience, spiffeId: req.spiffeId });
        stream.respond(okHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(jwtResponse('h.p.s'));
      });
      const ch = channel(ts);
      try {
        const sent = [
          { audience: ['a'], spiffeId: '' },
          { audience: ['a'], spiffeId: '' },
          { audience: ['b'], spiffeId: '' },
          { audience: ['a', 'b'], spiffeId: '' },
          { audience: ['a'], spiffeId: 'spiffe://example.org/x' },
          { audience: ['a'], spiffeId: '' },
        ];
        for (const req of sent) await ch.unary(m.fetchJWTSVID, req);
        assert.deepEqual(requests, sent);
      } finally {
        ch.close();
        await ts.close();
      }
    });
  });
}
