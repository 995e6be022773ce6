import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createContextValues, type UnaryRequest, type UnaryResponse } from '@connectrpc/connect';
import { SpiffeId } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { AgentActivity, agentActivityInterceptor } from './agent-activity.ts';
import { callerKey, type Caller } from './caller.ts';

const call = async (interceptor: ReturnType<typeof agentActivityInterceptor>, caller: Caller, fail = false): Promise<void> => {
  const contextValues = createContextValues().set(callerKey, caller);
  const next = async (): Promise<UnaryResponse> => {
    if (fail) throw new Error('handler failed');
    return {} as UnaryResponse;
  };
  await interceptor(next)({ contextValues } as unknown as UnaryRequest).catch(() => undefined);
};

test("records the caller's agent ID at the clock's time; admin, local and workload callers are not agents", async () => {
  const clock = new FakeClock(new Date('2026-12-07T10:00:00Z'));
  const activity = new AgentActivity();
  const interceptor = agentActivityInterceptor(activity, clock);
  const agent = SpiffeId.parse('spiffe://example.org/spire/agent/join_token/abc');
  await call(interceptor, { local: false, admin: false, id: agent, agentId: agent, remoteAddress: '127.0.0.1' });
  assert.equal(activity.lastSeen(agent.toString()), clock.nowMs());
  clock.advance(5_000);
  // a call that fails in its handler still shows the agent was there
  await call(interceptor, { local: false, admin: false, id: agent, agentId: agent, remoteAddress: '127.0.0.1' }, true);
  assert.equal(activity.lastSeen(agent.toString()), clock.nowMs());
  const admin = SpiffeId.parse('spiffe://example.org/admin');
  const workload = SpiffeId.parse('spiffe://example.org/spire/agent/not-attested');
  await call(interceptor, { local: false, admin: true, id: admin, remoteAddress: '127.0.0.1' });
  await call(interceptor, { local: true, admin: false, remoteAddress: '' });
  await call(interceptor, { local: false, admin: false, id: workload, remoteAddress: '127.0.0.1' });
  assert.equal(activity.lastSeen(admin.toString()), undefined);
  assert.equal(activity.lastSeen(workload.toString()), undefined);
  assert.deepEqual([...activity.lookup([agent.toString(), admin.toString(), workload.toString()]).keys()], [agent.toString()]);
});
