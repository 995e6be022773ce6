import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { serverInfoService, type Readiness } from './server-info-service.ts';

test('GetServerInfo: version, plugins, and the ready check as it is now (serving, then not)', async () => {
  const clock = new FakeClock(new Date('2026-12-07T10:00:00Z'));
  let now: Readiness = { serving: true, datastoreLastSuccessMs: clock.nowMs(), datastoreHost: 'db1:5432' };
  const svc = serverInfoService({
    version: '9.9.9',
    plugins: [{ type: 'DataStore', name: 'sql', detail: 'postgres db1:5432/spire' }],
    readiness: async () => now,
    startedAtMs: clock.nowMs(),
    clock,
  });
  const get = async () => svc.getServerInfo?.({} as never, {} as never);
  clock.advance(90_500);
  const up = await get();
  assert.equal(up?.version, '9.9.9');
  assert.deepEqual(up?.plugins, [{ type: 'DataStore', name: 'sql', detail: 'postgres db1:5432/spire' }]);
  assert.deepEqual(up?.health, {
    serving: true,
    reason: '',
    datastoreLastSuccess: BigInt(Date.parse('2026-12-07T10:00:00Z')),
    datastoreHost: 'db1:5432',
    uptimeSeconds: 90n,
  });
  now = { serving: false, reason: 'datastore: postgres unavailable: connect ECONNREFUSED', datastoreLastSuccessMs: 5, datastoreHost: null };
  const down = await get();
  assert.equal(down?.health?.serving, false);
  assert.equal(down?.health?.reason, 'datastore: postgres unavailable: connect ECONNREFUSED');
  assert.equal(down?.health?.datastoreHost, '', 'no host while the database is away');
  assert.equal(down?.health?.datastoreLastSuccess, 5n);
});
