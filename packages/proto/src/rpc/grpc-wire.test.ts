import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import { Code, ConnectError } from '@connectrpc/connect';
import { encodeGrpcMessage, grpcFrame, isGrpcProtoContentType, parseGrpcTimeout, unaryRequestPayload } from './grpc-wire.ts';

test('grpc-message and grpc-timeout helpers', () => {
  assert.equal(encodeGrpcMessage('plain text'), 'plain text');
  assert.equal(encodeGrpcMessage('50% ✗'), '50%25 %E2%9C%97');
  assert.equal(parseGrpcTimeout('5S'), 5000);
  assert.equal(parseGrpcTimeout('250m'), 250);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('bad'), undefined);
  assert.equal(parseGrpcTimeout(undefined), undefined);
});

test('content types the direct paths take', () => {
  for (const ct of ['application/grpc', 'application/grpc+proto', 'application/grpc; charset=utf-8', 'Application/GRPC'])
    assert.ok(isGrpcProtoContentType(ct), ct);
  for (const ct of ['application/grpc+json', 'application/grpc-web', 'application/json', undefined, ['application/grpc']])
    assert.ok(!isGrpcProtoContentType(ct), String(ct));
});

test('unary request payload: framing faults get connect-es codes, compressed messages are inflated', () => {
  const code = (f: () => unknown): Code | undefined => {
    try {
      f();
    } catch (e) {
      return e instanceof ConnectError ? e.code : undefined;
    }
    return undefined;
  };
  const msg = new Uint8Array([8, 1]);
  assert.deepEqual([...unaryRequestPayload({}, grpcFrame(msg), 100)], [8, 1]);
  assert.equal(
    code(() => unaryRequestPayload({}, Buffer.alloc(0), 100)),
    Code.Unimplemented,
    'no message',
  );
  assert.equal(
    code(() => unaryRequestPayload({}, Buffer.from([0, 0, 0]), 100)),
    Code.InvalidArgument,
    'short prefix',
  );
  assert.equal(
    code(() => unaryRequestPayload({}, Buffer.from([0, 0, 0, 0, 9, 1]), 100)),
    Code.InvalidArgument,
    'truncated message',
  );
  assert.equal(
    code(() => unaryRequestPayload({}, Buffer.concat([grpcFrame(msg), grpcFrame(msg)]), 100)),
    Code.Unimplemented,
    'two messages',
  );
  const gz = zlib.gzipSync(msg);
  const compressed = grpcFrame(gz);
  compressed[0] = 1;
  assert.deepEqual([...unaryRequestPayload({ 'grpc-encoding': 'gzip' }, compressed, 100)], [8, 1]);
  assert.equal(
    code(() => unaryRequestPayload({ 'grpc-encoding': 'br' }, compressed, 100)),
    Code.Internal,
    'unknown encoding',
  );
  assert.equal(
    code(() => unaryRequestPayload({ 'grpc-encoding': 'deflate' }, compressed, 100)),
    Code.InvalidArgument,
    'not deflate',
  );
  const bomb = grpcFrame(zlib.gzipSync(Buffer.alloc(10_000)));
  bomb[0] = 1;
  assert.equal(
    code(() => unaryRequestPayload({ 'grpc-encoding': 'gzip' }, bomb, 100)),
    Code.ResourceExhausted,
    'inflates beyond the limit',
  );
});
