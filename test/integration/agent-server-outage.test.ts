// Server stopped: cached SVIDs keep being served; an entry created meanwhile arrives after it returns.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import { cancelOnBreak } from '@ztwim/proto';
import { eventually } from '@ztwim/testkit';
import { startAgentEnv, type AgentEnv } from '../interop/lib/ztwim-agent-env.ts';

let env: AgentEnv;
before(async () => {
  env = await startAgentEnv({ syncInterval: '300ms' });
});
after(async () => {
  await env?.close();
});

async function svidIds(env: AgentEnv): Promise<string[]> {
  const { client } = env.workload();
  for await (const m of cancelOnBreak((signal) => client.fetchX509SVID({}, { signal }))) return m.svids.map((s) => s.spiffeId).sort();
  return [];
}

/** The agent's SVID IDs once there are `count` of them (20 s at most; the agent may not answer yet). */
function svidIdsOnce(env: AgentEnv, count: number): Promise<string[]> {
  return eventually(
    `${count} SVIDs served`,
    async () => {
      const ids = await svidIds(env);
      return ids.length === count ? ids : undefined;
    },
    {
      timeoutMs: 20_000,
      intervalMs: 200,
      retryErrors: true,
    },
  );
}

test('outage: cached svids served, new entry arrives after restart', async () => {
  const uid = process.getuid?.() ?? 0;
  env.server.cli(['entry', 'create', '-parentID', env.agent.agentId, '-spiffeID', 'spiffe://example.org/a', '-selector', `unix:uid:${uid}`]);
  assert.deepEqual(await svidIdsOnce(env, 1), ['spiffe://example.org/a']);
  const { client } = env.workload();
  const cached = (await client.fetchJWTSVID({ audience: ['cached'] })).svids[0];
  assert.equal(cached?.spiffeId, 'spiffe://example.org/a');
  await env.server.stop();
  // A JWT for a new audience needs the server: the caller gets Unavailable "could not fetch
  // JWT-SVID" (as from spire-agent), and this is how the test knows the server is gone.
  await assert.rejects(client.fetchJWTSVID({ audience: ['x'] }), (e: unknown) => {
    assert.ok(e instanceof ConnectError, String(e));
    assert.equal(e.code, Code.Unavailable, e.message);
    assert.match(e.rawMessage, /^could not fetch JWT-SVID/);
    return true;
  });
  // What the agent already had is still served: the X509-SVID and the cached JWT-SVID.
  assert.deepEqual(await svidIds(env), ['spiffe://example.org/a'], 'served from cache while server is down');
  assert.equal((await client.fetchJWTSVID({ audience: ['cached'] })).svids[0]?.svid, cached?.svid, 'cached JWT-SVID served while server is down');
  await env.restartServer();
  env.server.cli(['entry', 'create', '-parentID', env.agent.agentId, '-spiffeID', 'spiffe://example.org/b', '-selector', `unix:uid:${uid}`]);
  assert.deepEqual(await svidIdsOnce(env, 2), ['spiffe://example.org/a', 'spiffe://example.org/b']);
});
