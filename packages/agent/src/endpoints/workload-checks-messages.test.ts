// The Workload API checks' refusal messages, word for word where SPIRE's handler has one: a
// workload's operator reads them (and SPIRE's clients match nothing else than the code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import { SpiffeId } from '@ztwim/spiffe';
import { awaitCache, checkJwtSvidRequest, type ReadinessSource } from './workload-checks.ts';

function refusal(fn: () => void): ConnectError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConnectError, String(e));
    return e;
  }
  assert.fail('not refused');
}

test('awaitCache: a cache that is ready answers at once; one that is not says the agent is syncing and to retry', async () => {
  const asked: unknown[] = [];
  const source = (ready: boolean): ReadinessSource => ({
    waitReady: async (selectors, need, maxWaitMs) => {
      asked.push([selectors, need, maxWaitMs]);
      return ready;
    },
  });
  const sel = [{ type: 'unix', value: 'uid:0' }];
  await awaitCache(source(true), sel, 'svids', new AbortController().signal, 25);
  assert.deepEqual(asked, [[sel, 'svids', 25]]);
  await assert.rejects(awaitCache(source(false), sel, 'entries', new AbortController().signal), (e: unknown) => {
    assert.ok(e instanceof ConnectError, String(e));
    assert.equal(e.code, Code.Unavailable);
    assert.match(e.rawMessage, /^agent is syncing with the server: .*retry$/);
    return true;
  });
});

test("checkJwtSvidRequest: no audience is InvalidArgument 'audience must be specified' (SPIRE's message)", () => {
  for (const audience of [[], [''], ['', '']]) {
    const e = refusal(() => checkJwtSvidRequest({ audience, spiffeId: '' }));
    assert.equal(e.code, Code.InvalidArgument);
    assert.equal(e.rawMessage, 'audience must be specified');
  }
});

test("checkJwtSvidRequest: a malformed spiffe_id is InvalidArgument 'invalid requested SPIFFE ID: <why>' (SPIRE's message)", () => {
  for (const spiffeId of ['not-an-id', 'spiffe://td/a/../b', 'spiffe://TD/upper', 'https://td/w']) {
    const why = ((): string => {
      try {
        SpiffeId.parse(spiffeId);
      } catch (e) {
        return (e as Error).message;
      }
      return assert.fail(`${spiffeId} parses`);
    })();
    const e = refusal(() => checkJwtSvidRequest({ audience: ['a'], spiffeId }));
    assert.equal(e.code, Code.InvalidArgument);
    assert.equal(e.rawMessage, `invalid requested SPIFFE ID: ${why}`);
  }
});
