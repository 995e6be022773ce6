import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Code, createClient } from '@connectrpc/connect';
import { Health } from '../gen/grpc/health/v1/health_pb.ts';
import { createTcpGrpcTransport, createUnixGrpcTransport, type GrpcClientTransport } from './client-transport.ts';
import { callFailure } from '../testing/call-failure.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-dial-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
fs.writeFileSync(path.join(tmp, 'regular-file'), '');

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
      const e = await callFailure(createClient(Health, t).check({}));
      assert.equal(Code[e.code], 'Unavailable', e.message);
      assert.match(e.rawMessage, errno);
    } finally {
      t.close();
    }
  });

  test(`server stream to ${name} fails Unavailable`, async () => {
    const t = make();
    try {
      const e = await callFailure(
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
