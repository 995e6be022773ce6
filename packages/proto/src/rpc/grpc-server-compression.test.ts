// Response compression of startGrpcServer: off by default (as grpc-go servers), on when asked.
// A raw HTTP/2 client that accepts gzip reads the gRPC envelope's compressed flag.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { create, toBinary, fromBinary } from '@bufbuild/protobuf';
import type { ConnectRouter } from '@connectrpc/connect';
import { JWTSVIDRequestSchema, JWTSVIDResponseSchema, SpiffeWorkloadAPI } from '../gen/workload/workload_pb.ts';
import { startGrpcServer } from './grpc-server.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-proto-gz-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const BIG = 'x'.repeat(20_000);
const routes = (r: ConnectRouter): void => {
  r.service(SpiffeWorkloadAPI, {
    fetchJWTSVID(req) {
      return { svids: [{ spiffeId: req.spiffeId, svid: BIG }] };
    },
  });
};

/** One FetchJWTSVID call over h2c on a Unix socket; returns the response's grpc-encoding and envelope. */
async function call(socketPath: string, compressRequest: boolean): Promise<{ encoding: string | undefined; flag: number; body: Buffer }> {
  const session = http2.connect('http://localhost', { createConnection: () => net.connect({ path: socketPath }) });
  try {
    let msg = Buffer.from(toBinary(JWTSVIDRequestSchema, create(JWTSVIDRequestSchema, { spiffeId: 'spiffe://example.org/w', audience: ['a'] })));
    if (compressRequest) msg = gzipSync(msg);
    const head = Buffer.alloc(5);
    head[0] = compressRequest ? 1 : 0;
    head.writeUInt32BE(msg.length, 1);
    const req = session.request({
      ':method': 'POST',
      ':path': '/SpiffeWorkloadAPI/FetchJWTSVID',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-accept-encoding': 'gzip',
      ...(compressRequest ? { 'grpc-encoding': 'gzip' } : {}),
    });
    req.end(Buffer.concat([head, msg]));
    return await new Promise((resolve, reject) => {
      let encoding: string | undefined;
      const chunks: Buffer[] = [];
      req.on('response', (h) => {
        const e = h['grpc-encoding'];
        encoding = typeof e === 'string' ? e : undefined;
      });
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('error', reject);
      req.on('end', () => {
        const all = Buffer.concat(chunks);
        if (all.length < 5) return reject(new Error(`no response message (${all.length} bytes)`));
        resolve({ encoding, flag: all[0] ?? -1, body: all.subarray(5, 5 + all.readUInt32BE(1)) });
      });
    });
  } finally {
    session.close();
  }
}

test('responses are not compressed by default, even when the client accepts gzip; gzip requests are accepted', async () => {
  const socketPath = path.join(tmp, 'default.sock');
  const server = await startGrpcServer({ routes, listen: { path: socketPath } });
  try {
    for (const compressRequest of [false, true]) {
      const r = await call(socketPath, compressRequest);
      assert.equal(r.flag, 0, 'envelope not compressed');
      const res = fromBinary(JWTSVIDResponseSchema, r.body);
      assert.equal(res.svids[0]?.svid, BIG);
    }
  } finally {
    await server.close();
  }
});

test('compressResponses: true compresses large responses for clients that accept gzip', async () => {
  const socketPath = path.join(tmp, 'gzip.sock');
  const server = await startGrpcServer({ routes, listen: { path: socketPath }, compressResponses: true });
  try {
    const r = await call(socketPath, false);
    assert.equal(r.encoding, 'gzip');
    assert.equal(r.flag, 1, 'envelope compressed');
    assert.ok(r.body.length < 1000, `compressed body is small (${r.body.length} bytes)`);
  } finally {
    await server.close();
  }
});
