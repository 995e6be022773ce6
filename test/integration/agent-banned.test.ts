// A banned agent stops with a clear error and deletes its stored SVID.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startAgentEnv, type AgentEnv } from '../interop/lib/ztwim-agent-env.ts';

let env: AgentEnv;
before(async () => {
  env = await startAgentEnv({ syncInterval: '300ms' });
});
after(async () => {
  await env?.close();
});

test('banned agent stops with "agent is banned" and removes its svid', async () => {
  assert.ok(existsSync(join(env.config.dataDir, 'agent-data.json')));
  env.server.cli(['agent', 'ban', '-spiffeID', env.agent.agentId]);
  const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error('agent did not stop')), 15_000).unref());
  await assert.rejects(Promise.race([env.agent.done, timeout]), /agent is banned/);
  assert.equal(existsSync(join(env.config.dataDir, 'agent-data.json')), false);
});
