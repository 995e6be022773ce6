// AgentDeps.onFirstSync (what `ztwim agent run` gives back memory on): called once, when the first
// sync since start has completed, and not by the syncs after it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cancelOnBreak } from '@ztwim/proto';
import { captureLogs, eventually, holdsFor } from '@ztwim/testkit';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.close();
});

test('onFirstSync: once, after the first sync completed; later syncs do not call it', { timeout: 60_000 }, async () => {
  const logs = captureLogs('debug');
  let calls = 0;
  let loggedBefore = false;
  const { agent } = await stack.startAgent({
    syncInterval: '1s',
    deps: {
      logger: logs.log,
      onFirstSync: () => {
        calls++;
        loggedBefore = logs.lines.some((l) => l['msg'] === 'First sync complete');
      },
    },
  });
  await eventually('the first sync', () => calls > 0, { timeoutMs: 20_000 });
  assert.ok(loggedBefore, 'called after the sync completed');
  // A later sync brings a new entry's SVID; the call count stays at one through it and after.
  const uid = process.getuid?.() ?? 0;
  await stack.createEntries([{ parentId: agent.agentId, path: '/after-first-sync', selectors: [`unix:uid:${uid}`] }]);
  const client = stack.workload(agent.socketPath);
  await eventually(
    'the new entry served (a later sync)',
    async () => {
      for await (const m of cancelOnBreak((signal) => client.fetchX509SVID({}, { signal }))) {
        return m.svids.some((s) => s.spiffeId === 'spiffe://example.org/after-first-sync');
      }
      return false;
    },
    { timeoutMs: 15_000, intervalMs: 200, retryErrors: true },
  );
  await holdsFor('one call', () => calls === 1, { forMs: 2_500, intervalMs: 100 });
});
