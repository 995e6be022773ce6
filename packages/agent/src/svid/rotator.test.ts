import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTasks, silentLogger, ZtwimError } from '@ztwim/core';
import type { X509Svid } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import type { AgentCredentials } from '../storage/storage.ts';
import type { ServerClient } from '../client/server-client.ts';
import { singleServer } from '../client/server-pool.ts';
import { AgentSvidRotator, type AgentSvidRotatorDeps } from './rotator.ts';
import { opensslAgentSvid } from './openssl-svid.test-util.ts';

const agentSvid = (): X509Svid => opensslAgentSvid();

const fakeClient = (name: string, closed: string[]): ServerClient => ({ close: () => closed.push(name) }) as unknown as ServerClient;

function setup(creds: AgentCredentials, over: Partial<AgentSvidRotatorDeps> = {}) {
  const clock = new FakeClock(creds.svid.notBefore());
  const calls: string[] = [];
  const closed: string[] = [];
  const rotated: AgentCredentials[] = [];
  const rotator = new AgentSvidRotator(creds, {
    clock,
    log: silentLogger(),
    checkIntervalMs: 5000,
    server: singleServer(
      () => fakeClient('current', closed),
      () => fakeClient('bootstrap', closed),
    ),
    attest: async () => (calls.push('attest'), { svid: agentSvid(), reattestable: true }),
    renew: async (_c, reattestable) => (calls.push('renew'), { svid: agentSvid(), reattestable }),
    attestationData: () => ({ type: 'join_token', token: 't' }),
    onRotated: (c) => void rotated.push(c),
    ...over,
  });
  return { clock, calls, closed, rotated, rotator };
}

test('renews with RenewAgent at half-life, not before, and hands the new SVID on', async () => {
  const first: AgentCredentials = { svid: agentSvid(), reattestable: false };
  const { clock, calls, rotated, rotator } = setup(first);
  const half = (first.svid.expiresAt().getTime() - first.svid.notBefore().getTime()) / 2;
  clock.advance(half - 1);
  await rotator.rotateIfDue();
  assert.deepEqual(calls, []);
  clock.advance(1);
  await rotator.rotateIfDue();
  assert.deepEqual(calls, ['renew']);
  assert.equal(rotated.length, 1);
  assert.equal(rotator.creds, rotated[0]);
  assert.notEqual(rotator.creds.svid, first.svid);
});

test('a reattestable agent attests again over a new bootstrap connection, which it closes', async () => {
  const first: AgentCredentials = { svid: agentSvid(), reattestable: true };
  const { clock, calls, closed, rotator } = setup(first);
  clock.advance(first.svid.expiresAt().getTime() - first.svid.notBefore().getTime());
  await rotator.rotateIfDue();
  assert.deepEqual(calls, ['attest']);
  assert.deepEqual(closed, ['bootstrap']);
});

test('run(): a failed renewal is retried at the next check; PermissionDenied stops the task', async () => {
  const first: AgentCredentials = { svid: agentSvid(), reattestable: false };
  let attempts = 0;
  const { clock, rotator } = setup(first, {
    renew: async () => {
      attempts++;
      if (attempts === 1) throw new ZtwimError('ERR_UNAVAILABLE', 'Unavailable: server down');
      throw new ZtwimError('ERR_PERMISSION_DENIED', 'agent is banned', { fields: { agent_state: 'banned' } });
    },
  });
  clock.advance(first.svid.expiresAt().getTime() - first.svid.notBefore().getTime() - 1000);
  const run = runTasks([rotator.run()], new AbortController().signal);
  await clock.waitForTimers(1);
  assert.equal(attempts, 1, 'checked at start, failed, loop goes on');
  clock.advance(5000);
  await assert.rejects(run, /agent is banned/);
  assert.equal(attempts, 2);
  assert.equal(clock.pending(), 0);
});
