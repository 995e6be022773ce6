import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { AgentActivity, MAX_LAST_SEEN_IDS } from './agent-activity.ts';
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
    agentActivity: new AgentActivity(),
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

test('GetAgentsLastSeen: the asked agents seen since start, absent ones left out, at most 1,000 IDs', async () => {
  const clock = new FakeClock(new Date('2026-12-07T10:00:00Z'));
  const agentActivity = new AgentActivity();
  const svc = serverInfoService({ version: '1', plugins: [], readiness: async () => ({ serving: true }), startedAtMs: 0, clock, agentActivity });
  agentActivity.record('spiffe://td/spire/agent/a', 1_000);
  agentActivity.record('spiffe://td/spire/agent/b', 2_000);
  agentActivity.record('spiffe://td/spire/agent/a', 3_000);
  const r = await svc.getAgentsLastSeen?.({ agentIds: ['spiffe://td/spire/agent/a', 'spiffe://td/spire/agent/never'] } as never, {} as never);
  assert.deepEqual(r?.lastSeen, { 'spiffe://td/spire/agent/a': 3_000n });
  const many = Array.from({ length: MAX_LAST_SEEN_IDS + 1 }, (_, i) => `spiffe://td/spire/agent/${i}`);
  assert.throws(() => svc.getAgentsLastSeen?.({ agentIds: many } as never, {} as never), { code: 'ERR_INVALID_ARGUMENT', message: /1001 IDs, at most 1000/ });
});
