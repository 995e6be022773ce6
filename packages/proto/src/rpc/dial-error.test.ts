import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { Health } from '../gen/grpc/health/v1/health_pb.ts';
import { createTcpGrpcTransport, createUnixGrpcTransport, type GrpcClientTransport } from './client-transport.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-dial-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
fs.writeFileSync(path.join(tmp, 'regular-file'), '');

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ConnectError, String(e));
    return e;
  }
  assert.fail('the call succeeded');
}

// Nothing listens: every call fails Unavailable (as grpc-go), never Internal.
const targets: Array<[string, () => GrpcClientTransport, RegExp]> = [
  ['missing socket (ENOENT)', () => createUnixGrpcTransport(path.join(tmp, 'missing', 'api.sock')), /ENOENT/],
  ['regular file (ECONNREFUSED)', () => createUnixGrpcTransport(path.join(tmp, 'regular-file')), /ECONNREFUSED/],
  ['closed TCP port (ECONNREFUSED)', () => createTcpGrpcTransport({ host: '127.0.0.1', port: 1 }), /ECONNREFUSED/],
];

for (const [name, make, errno] of targets) {
  test(`unary call to ${name} fails Unavailable`, async () => {
    const t = make();
    try {
      const e = await failure(createClient(Health, t).check({}));
      assert.equal(Code[e.code], 'Unavailable', e.message);
      assert.match(e.rawMessage, errno);
    } finally {
      t.close();
    }
  });

  test(`server stream to ${name} fails Unavailable`, async () => {
    const t = make();
    try {
      const e = await failure(
        (async () => {
          for await (const _ of createClient(Health, t).watch({})) break;
        })(),
      );
      assert.equal(Code[e.code], 'Unavailable', e.message);
      assert.match(e.rawMessage, errno);
    } finally {
      t.close();
    }
  });
}
