import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { create, toBinary } from '@bufbuild/protobuf';
import { HealthCheckResponseSchema, HealthCheckResponse_ServingStatus, Health } from '../gen/grpc/health/v1/health_pb.ts';
import { Http2SessionManager } from '@connectrpc/connect-node';
import { eventually } from '@ztwim/testkit';
import { createUnixGrpcTransport, headersInterceptor } from './client-transport.ts';
import { directCallsClient } from './direct-calls-client.ts';
import { grpcFrame } from './grpc-wire.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-duc-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** A raw h2c server on a Unix socket whose every stream is answered by `answer`. */
async function rawServer(
  answer: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<{ path: string; close: () => Promise<void> }> {
  const p = path.join(tmp, `raw${n++}.sock`);
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => answer(stream, headers));
  });
  await new Promise<void>((resolve) => server.listen(p, resolve));
  return { path: p, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const SERVING = toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVING }));

async function codeOf(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ConnectError, String(e));
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error('call succeeded');
}

test('direct unary client: answers, metadata through interceptors, trailers-only errors, gzip answers', async () => {
  let seen: http2.IncomingHttpHeaders = {};
  const srv = await rawServer((stream, headers) => {
    seen = headers;
    const svc = (headers['x-case'] as string | undefined) ?? '';
    if (svc === 'denied') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '7', 'grpc-message': 'no%20way' }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...(svc === 'gzip' ? { 'grpc-encoding': 'gzip' } : {}) }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    if (svc === 'gzip') {
      const f = grpcFrame(zlib.gzipSync(SERVING));
      f[0] = 1;
      stream.end(f);
    } else stream.end(grpcFrame(SERVING));
  });
  const transport = createUnixGrpcTransport(srv.path, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
  try {
    const health = createClient(Health, transport);
    assert.equal((await health.check({ service: 'x' })).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(seen['workload.spiffe.io'], 'true', 'interceptor header sent');
    assert.equal(seen[':path'], '/grpc.health.v1.Health/Check');
    assert.equal(seen['te'], 'trailers');
    assert.equal((await health.check({}, { headers: { 'x-case': 'gzip' } })).status, HealthCheckResponse_ServingStatus.SERVING, 'gzip answer decoded');
    const denied = await codeOf(health.check({}, { headers: { 'x-case': 'denied' } }));
    assert.deepEqual(denied, { code: Code.PermissionDenied, message: 'no way' });
  } finally {
    transport.close();
    await srv.close();
  }
});

test('direct unary client: HTTP errors, resets, oversized answers, deadlines, cancels and a missing server', async () => {
  let slowCalls = 0;
  const srv = await rawServer((stream, headers) => {
    const c = headers['x-case'];
    if (c === 'slow') slowCalls++;
    if (c === '503') stream.respond({ ':status': 503 }, { endStream: true });
    else if (c === 'refused') stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    else if (c === 'big') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(new Uint8Array(5000)));
    } else if (c === 'no-trailer') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(grpcFrame(SERVING));
    }
    // 'slow': never answered.
  });
  const transport = createUnixGrpcTransport(srv.path, { readMaxBytes: 1000 });
  const health = createClient(Health, transport);
  const call = (c: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown> =>
    health.check({}, { headers: { 'x-case': c }, ...opts });
  try {
    assert.equal((await codeOf(call('503'))).code, Code.Unavailable);
    assert.equal((await codeOf(call('refused'))).code, Code.Unavailable);
    assert.equal((await codeOf(call('big'))).code, Code.ResourceExhausted);
    assert.equal((await codeOf(call('no-trailer'))).code, Code.Internal);
    const t0 = Date.now();
    assert.equal((await codeOf(call('slow', { timeoutMs: 100 }))).code, Code.DeadlineExceeded);
    assert.ok(Date.now() - t0 < 2000, 'deadline kept');
    const ac = new AbortController();
    const slowBefore = slowCalls;
    const canceled = codeOf(call('slow', { signal: ac.signal }));
    // cancel a call the server holds (not one still being sent)
    await eventually('the server to hold the second slow call', () => slowCalls > slowBefore, { timeoutMs: 5000 });
    ac.abort();
    assert.equal((await canceled).code, Code.Canceled);
  } finally {
    transport.close();
    await srv.close();
  }
  const gone = createUnixGrpcTransport(path.join(tmp, 'nobody-here.sock'));
  try {
    assert.equal((await codeOf(createClient(Health, gone).check({}))).code, Code.Unavailable);
  } finally {
    gone.close();
  }
});

test('direct unary client: a finished call leaves no listener of its own on the HTTP/2 stream', async () => {
  // Node 20 keeps client streams reachable until a full GC; what our listeners hold must not be.
  const srv = await rawServer((stream, headers) => {
    if (headers['x-case'] === 'denied') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '7' }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(grpcFrame(SERVING));
  });
  const sessionManager = new Http2SessionManager('http://localhost', {}, { createConnection: () => net.connect({ path: srv.path }) });
  // Each stream with the listener counts it had when handed to the client (node's and connect's).
  const streams: Array<{ s: http2.ClientHttp2Stream; before: Map<string, number> }> = [];
  const events = ['response', 'data', 'trailers', 'error', 'close'];
  const request = sessionManager.request.bind(sessionManager);
  sessionManager.request = async (...args: Parameters<typeof request>) => {
    const s = await request(...args);
    streams.push({ s, before: new Map(events.map((ev) => [ev, s.listenerCount(ev)])) });
    return s;
  };
  const unary = directCallsClient({ sessionManager, baseUrl: 'http://localhost' });
  try {
    const ok = await unary(Health.method.check, undefined, 5000, undefined, {});
    assert.equal(ok.message.status, HealthCheckResponse_ServingStatus.SERVING);
    const denied = await codeOf(unary(Health.method.check, undefined, 5000, { 'x-case': 'denied' }, {}));
    assert.equal(denied.code, Code.PermissionDenied);
    assert.equal(streams.length, 2);
    for (const { s, before } of streams) {
      await waitClosed(s);
      // (theirs may have gone too: connect's 'response' listener is a once)
      for (const ev of events) assert.ok(s.listenerCount(ev) <= (before.get(ev) ?? 0), `no '${ev}' listener of the call left`);
    }
  } finally {
    sessionManager.abort();
    await srv.close();
  }
});

async function waitClosed(s: http2.ClientHttp2Stream): Promise<void> {
  if (!s.closed) await new Promise<void>((resolve) => s.once('close', () => resolve()));
  await new Promise<void>((resolve) => setImmediate(resolve));
}
