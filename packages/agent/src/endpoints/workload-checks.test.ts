import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import { silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { CacheManager } from '../manager/sync.ts';
import type { ServerClient } from '../client/server-client.ts';
import { singleServer } from '../client/server-pool.ts';
import { FIRST_SYNC_WAIT_MS, SYNCING_MESSAGE, awaitCache, checkJwtSvidRequest, checkValidateRequest } from './workload-checks.ts';

const uid0 = [{ type: 'unix', value: 'uid:0' }];

function codeOf(fn: () => void): Code | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof ConnectError, String(e));
    return e.code;
  }
}

test('awaitCache: before the first sync a call waits FIRST_SYNC_WAIT_MS of the clock, then gets Unavailable "agent is syncing"', async () => {
  const clock = new FakeClock();
  const down = {
    entry: {
      syncAuthorizedEntries: () => {
        throw new Error('server down');
      },
    },
  } as unknown as ServerClient;
  const cache = new CacheManager({ clock, logger: silentLogger(), syncIntervalMs: 5000, server: singleServer(() => down) });
  assert.equal(await cache.sync(), false);
  for (const need of ['svids', 'entries'] as const) {
    const r: { outcome?: unknown } = {};
    const call = awaitCache(cache, uid0, need, new AbortController().signal).then(
      () => {
        r.outcome = 'served';
      },
      (e: unknown) => {
        r.outcome = e;
      },
    );
    clock.advance(FIRST_SYNC_WAIT_MS - 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(r.outcome, undefined, `${need}: still waiting`);
    clock.advance(1);
    await call;
    const e = r.outcome as unknown;
    assert.ok(e instanceof ConnectError, `${need}: ${String(e)}`);
    assert.equal(e.code, Code.Unavailable);
    assert.equal(e.rawMessage, SYNCING_MESSAGE);
  }
});

const jwtCases: { name: string; audience: string[]; spiffeId?: string; want: Code | 'ok' }[] = [
  { name: 'no audience', audience: [], want: Code.InvalidArgument },
  { name: 'one empty audience (go-spiffe and our SDK send [""] for audience "")', audience: [''], want: Code.InvalidArgument },
  { name: 'only empty audiences', audience: ['', ''], want: Code.InvalidArgument },
  { name: 'an empty audience beside a real one', audience: ['', 'a'], want: 'ok' },
  { name: 'one audience', audience: ['a'], want: 'ok' },
  { name: 'bad spiffe_id', audience: ['a'], spiffeId: 'not-an-id', want: Code.InvalidArgument },
  { name: 'spiffe_id of another trust domain is still a valid ID', audience: ['a'], spiffeId: 'spiffe://other.org/w', want: 'ok' },
];
for (const c of jwtCases) {
  test(`checkJwtSvidRequest: ${c.name}`, () => {
    assert.equal(
      codeOf(() => checkJwtSvidRequest({ audience: c.audience, spiffeId: c.spiffeId ?? '' })),
      c.want,
    );
  });
}

test("checkValidateRequest: empty audience, then empty svid: InvalidArgument with SPIRE's messages", () => {
  const msg = (req: { audience: string; svid: string }): string => {
    try {
      checkValidateRequest(req);
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof ConnectError);
      assert.equal(e.code, Code.InvalidArgument);
      return e.rawMessage;
    }
  };
  assert.equal(msg({ audience: '', svid: '' }), 'audience must be specified');
  assert.equal(msg({ audience: '', svid: 'x' }), 'audience must be specified');
  assert.equal(msg({ audience: 'a', svid: '' }), 'svid must be specified');
  assert.equal(msg({ audience: 'a', svid: 'x' }), 'ok');
});
