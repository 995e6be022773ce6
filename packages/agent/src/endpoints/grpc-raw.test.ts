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
import {
  HealthService, HealthCheckResponse_ServingStatus, JWTSVIDRequestSchema, JWTSVIDResponseSchema, SpiffeWorkloadAPI,
  cancelOnBreak, createUnixGrpcTransport,
} from '@ztwim/proto';
import { EncodedMessage, serverStream, startRawGrpcServer, unary } from './grpc-raw.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-rawgrpc-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const sockPath = (): string => path.join(tmp, `s${n++}.sock`);

const W = SpiffeWorkloadAPI.method;

async function fixture() {
  const socket = sockPath();
  let sessions = 0;
  const aborted: Promise<unknown>[] = [];
  const server = await startRawGrpcServer<number>({
    path: socket,
    mode: 0o777,
    sessionValue: () => ++sessions,
    guard: (m, h) => (m.parent.typeName !== 'grpc.health.v1.Health' && h['x-token'] !== 'ok' ? new ConnectError('no token', Code.InvalidArgument) : undefined),
    methods: [
      unary(W.fetchJWTSVID, async (req, ctx) => {
        const aud = req.audience[0] ?? '';
        if (aud === 'denied') throw new ConnectError('nope ✗ 100%', Code.PermissionDenied);
        if (aud === 'plain') throw new Error('boom');
        if (aud === 'encoded') {
          return new EncodedMessage(toBinary(JWTSVIDResponseSchema, create(JWTSVIDResponseSchema, { svids: [{ spiffeId: 'spiffe://td/enc', svid: 'e' }] })));
        }
        if (aud === 'slow') await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
        return { svids: [{ spiffeId: `spiffe://td/${aud}`, svid: `conn-${ctx.peer}` }] };
      }),
      serverStream(W.fetchX509Bundles, async function* (_req, ctx) {
        let i = 0;
        aborted.push(new Promise((r) => ctx.signal.addEventListener('abort', () => r(ctx.signal.reason), { once: true })));
        while (!ctx.signal.aborted) {
          yield { bundles: { [`n${i++}`]: new Uint8Array([i]) } };
          await new Promise((r) => setTimeout(r, 5));
        }
      }),
      unary(HealthService.method.check, () => ({ status: HealthCheckResponse_ServingStatus.SERVING })),
    ],
  });
  return { server, socket, aborted, sessions: () => sessions };
}

test('raw gRPC server: unary, errors, guard, per-connection value, streams, shutdown', async () => {
  const fx = await fixture();
  const transport = createUnixGrpcTransport(fx.socket);
  const client = createClient(SpiffeWorkloadAPI, transport);
  const h = { headers: { 'x-token': 'ok' } };
  try {
    assert.equal((fs.statSync(fx.socket).mode & 0o777), 0o777);
    const r1 = await client.fetchJWTSVID({ audience: ['a'] }, h);
    const r2 = await client.fetchJWTSVID({ audience: ['b'] }, h);
    assert.equal(r1.svids[0]?.spiffeId, 'spiffe://td/a');
    // One connection: the value is computed once and shared by its calls.
    assert.equal(r1.svids[0]?.svid, r2.svids[0]?.svid);
    assert.equal(fx.sessions(), 1);
    assert.equal((await client.fetchJWTSVID({ audience: ['encoded'] }, h)).svids[0]?.spiffeId, 'spiffe://td/enc');

    await assert.rejects(client.fetchJWTSVID({ audience: ['a'] }), (e) => e instanceof ConnectError && e.code === Code.InvalidArgument && e.rawMessage === 'no token');
    await assert.rejects(client.fetchJWTSVID({ audience: ['denied'] }, h), (e) => e instanceof ConnectError && e.code === Code.PermissionDenied && e.rawMessage === 'nope ✗ 100%');
    await assert.rejects(client.fetchJWTSVID({ audience: ['plain'] }, h), (e) => e instanceof ConnectError && e.code === Code.Unknown && e.rawMessage === 'boom');
    await assert.rejects(client.fetchJWTSVID({ audience: ['slow'] }, { ...h, timeoutMs: 50 }), (e) => e instanceof ConnectError && e.code === Code.DeadlineExceeded);
    await assert.rejects(client.validateJWTSVID({ audience: 'a', svid: 'x' }, h), (e) => e instanceof ConnectError && e.code === Code.Unimplemented);

    const health = createClient(HealthService, transport);
    assert.equal((await health.check({})).status, HealthCheckResponse_ServingStatus.SERVING);

    // Server stream: messages flow; a client cancel aborts the handler's signal.
    const seen: string[] = [];
    for await (const m of cancelOnBreak((signal) => client.fetchX509Bundles({}, { ...h, signal }))) {
      seen.push(...Object.keys(m.bundles));
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, ['n0', 'n1', 'n2']);
    const reason = await fx.aborted[0];
    assert.ok(reason instanceof ConnectError && reason.code === Code.Canceled);

    // A gzip-compressed request is accepted.
    const body = Buffer.from(toBinary(JWTSVIDRequestSchema, create(JWTSVIDRequestSchema, { audience: ['gz'] })));
    const gz = zlib.gzipSync(body);
    const framed = Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), gz]);
    framed.writeUInt32BE(gz.length, 1);
    const raw = http2.connect('http://localhost', { createConnection: () => net.connect(fx.socket) });
    try {
      const st = raw.request({ ':method': 'POST', ':path': '/SpiffeWorkloadAPI/FetchJWTSVID', 'content-type': 'application/grpc', 'grpc-encoding': 'gzip', 'x-token': 'ok', te: 'trailers' });
      const chunks: Buffer[] = [];
      st.on('data', (c: Buffer) => chunks.push(c));
      const gotTrailers = new Promise<http2.IncomingHttpHeaders>((resolve) => st.on('trailers', resolve));
      st.end(framed);
      const trailers = await gotTrailers;
      await new Promise((r) => st.on('close', r));
      assert.equal(trailers['grpc-status'], '0');
      assert.match(Buffer.concat(chunks).toString('latin1'), /spiffe:\/\/td\/gz/);
      // Unknown method: UNIMPLEMENTED in a trailers-only response.
      const st2 = raw.request({ ':method': 'POST', ':path': '/No/Such', 'content-type': 'application/grpc', te: 'trailers' });
      const gotHdrs = new Promise<http2.IncomingHttpHeaders>((resolve) => st2.on('response', resolve));
      st2.end();
      const hdrs = await gotHdrs;
      assert.equal(hdrs['grpc-status'], String(Code.Unimplemented));
    } finally {
      raw.close();
    }

    // Shutdown ends an open stream with UNAVAILABLE and removes the socket.
    const it = client.fetchX509Bundles({}, h)[Symbol.asyncIterator]();
    await it.next();
    const closing = fx.server.close({ graceMs: 2000 });
    await assert.rejects((async () => { for (;;) { const r = await it.next(); if (r.done === true) return; } })(), (e) => e instanceof ConnectError && e.code === Code.Unavailable);
    await closing;
    assert.equal(fs.existsSync(fx.socket), false);
  } finally {
    await fx.server.close();
  }
});
