import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import { isZtwimError } from '@ztwim/core';
import { permissionDeniedError, PermissionDeniedDetails_Reason } from '@ztwim/proto';
import { hasGrpcCode, serverCallError, statusText, translatingClient } from './errors.ts';

test('a PermissionDenied naming the agent banned or not attested marks agent_state', () => {
  const banned = serverCallError(permissionDeniedError('failed to attest: agent is banned', PermissionDeniedDetails_Reason.AGENT_BANNED));
  assert.ok(isZtwimError(banned, 'ERR_PERMISSION_DENIED'));
  assert.equal(banned.message, 'agent is banned');
  assert.equal(banned.fields['agent_state'], 'banned');
  const gone = serverCallError(permissionDeniedError('agent is not attested', PermissionDeniedDetails_Reason.AGENT_NOT_ATTESTED));
  assert.ok(isZtwimError(gone, 'ERR_PERMISSION_DENIED'));
  assert.equal(gone.fields['agent_state'], 'not_attested');
  const plain = serverCallError(new ConnectError('x509pop: certificate verification failed', Code.PermissionDenied));
  assert.ok(isZtwimError(plain, 'ERR_PERMISSION_DENIED'));
  assert.equal(plain.fields['agent_state'], undefined);
  assert.equal(statusText(plain), 'PermissionDenied: x509pop: certificate verification failed');
});

test('gRPC codes map to typed codes; transport failures and deadlines are ERR_UNAVAILABLE with the gRPC code kept', () => {
  const cases: Array<[Code, string]> = [
    [Code.Unimplemented, 'ERR_UNIMPLEMENTED'],
    [Code.InvalidArgument, 'ERR_INVALID_ARGUMENT'],
    [Code.ResourceExhausted, 'ERR_RESOURCE_EXHAUSTED'],
    [Code.Unauthenticated, 'ERR_UNAUTHENTICATED'],
    [Code.Unavailable, 'ERR_UNAVAILABLE'],
    [Code.DeadlineExceeded, 'ERR_UNAVAILABLE'],
    [Code.Unknown, 'ERR_UNAVAILABLE'],
  ];
  for (const [code, typed] of cases) {
    const e = serverCallError(new ConnectError('why', code));
    assert.ok(isZtwimError(e), Code[code]);
    assert.equal(e.code, typed, Code[code]);
    assert.equal(e.message, `${Code[code]}: why`);
    assert.ok(e.cause instanceof ConnectError);
    assert.equal(hasGrpcCode(e, code), true);
  }
  const other = new Error('not a status');
  assert.equal(serverCallError(other), other);
});

test('translatingClient: unary rejections and stream errors come out typed; early break still ends the stream', async () => {
  let returned = false;
  const raw = {
    unary: async (): Promise<number> => {
      throw new ConnectError('nope', Code.Unimplemented);
    },
    ok: async (n: number): Promise<number> => n + 1,
    stream: (): AsyncIterable<number> => ({
      [Symbol.asyncIterator]: () => {
        let i = 0;
        return {
          next: async () => {
            if (i === 2) throw new ConnectError('deadline', Code.DeadlineExceeded);
            return { value: i++, done: false };
          },
          return: async () => {
            returned = true;
            return { value: undefined, done: true };
          },
        };
      },
    }),
  };
  const c = translatingClient(raw);
  assert.equal(await c.ok(1), 2);
  await assert.rejects(c.unary(), (e: unknown) => isZtwimError(e, 'ERR_UNIMPLEMENTED'));
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const v of c.stream()) seen.push(v);
    })(),
    (e: unknown) => hasGrpcCode(e, Code.DeadlineExceeded),
  );
  assert.deepEqual(seen, [0, 1]);
  for await (const _ of c.stream()) break;
  assert.equal(returned, true, 'a break in the caller returns the underlying stream (the call is cancelled)');
});
