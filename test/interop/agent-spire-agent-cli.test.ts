// The real `spire-agent api fetch` (v1.13.0) against our agent's Workload API socket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { spireAgentBin } from './lib/peers.ts';
import { startAgentEnv, type AgentEnv } from './lib/ztwim-agent-env.ts';

describe('spire-agent api fetch against our agent', () => {
  let env: AgentEnv;
  const bin = spireAgentBin();
  before(async () => {
    env = await startAgentEnv();
    env.server.cli([
      'entry',
      'create',
      '-parentID',
      env.agent.agentId,
      '-spiffeID',
      'spiffe://example.org/cli',
      '-selector',
      `unix:uid:${process.getuid?.() ?? 0}`,
    ]);
  });
  after(async () => {
    await env?.close();
  });

  const run = async (args: string[]): Promise<string> => {
    const end = Date.now() + 15_000;
    for (;;) {
      // Async: our agent runs in this process, a sync spawn would block it.
      try {
        const r = await promisify(execFile)(bin, ['api', 'fetch', ...args, '-socketPath', env.config.socketPath], { encoding: 'utf8', timeout: 20_000 });
        return r.stdout;
      } catch (e) {
        if (Date.now() > end) throw new Error(`spire-agent api fetch ${args.join(' ')} failed: ${String(e)}`);
      }
      await delay(300);
    }
  };

  test('api fetch x509', async () => {
    const out = await run(['x509']);
    assert.match(out, /SPIFFE ID:\s+spiffe:\/\/example\.org\/cli/);
  });

  test('api fetch jwt -audience test', async () => {
    const out = await run(['jwt', '-audience', 'test']);
    assert.match(out, /spiffe:\/\/example\.org\/cli/);
    assert.match(out, /eyJ/);
  });
});
