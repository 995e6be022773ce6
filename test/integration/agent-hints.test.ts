// Entry changes reach a ztwim agent at once through the server's hints (ztwim.agent.v1.AgentHints),
// not at its next sync: with a 60 s sync interval, a new entry and an entry update are served within
// seconds. (Against spire-server, which has no such service, the agent keeps to its sync interval:
// the SPIRE-server suites in test/interop run that combination.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cancelOnBreak } from '@ztwim/proto';
import { captureLogs, eventually } from '@ztwim/testkit';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.close();
});

test('a new entry and an entry update reach the agent within seconds, well inside its 60 s sync interval', { timeout: 60_000 }, async () => {
  const uid = process.getuid?.() ?? 0;
  const logs = captureLogs('debug');
  const { agent } = await stack.startAgent({ syncInterval: '60s', deps: { logger: logs.log } });
  const client = stack.workload(agent.socketPath);
  // The agent's first sync found nothing for it; only a hint can bring the entry before 60 s. The
  // agent opens its hint stream after it started: a probe entry (for a uid no process runs as) is
  // touched until the agent logs a hint, so the stream is known to be open.
  const [probe] = await stack.createEntries([{ parentId: agent.agentId, path: '/probe', selectors: ['unix:uid:4294967294'] }]);
  let touches = 0;
  await eventually(
    "the agent's hint stream",
    async () => {
      if (logs.lines.some((l) => l['msg'] === 'Entry change hint from the server')) return true;
      await stack.entry.batchUpdateEntry({ entries: [{ id: probe ?? '', dnsNames: [`probe-${++touches}.example.org`] }], inputMask: { dnsNames: true } });
      return false;
    },
    { timeoutMs: 15_000, intervalMs: 300 },
  );
  const t0 = Date.now();
  const [id] = await stack.createEntries([{ parentId: agent.agentId, path: '/hinted', selectors: [`unix:uid:${uid}`] }]);
  await eventually(
    'the new entry on the Workload API',
    async () => {
      for await (const m of cancelOnBreak((signal) => client.fetchX509SVID({}, { signal }))) {
        return m.svids.some((s) => s.spiffeId === 'spiffe://example.org/hinted');
      }
      return false;
    },
    { timeoutMs: 15_000, intervalMs: 100, retryErrors: true },
  );
  const createMs = Date.now() - t0;
  assert.ok(createMs < 10_000, `served ${createMs} ms after entry create (sync interval 60 s)`);

  // An update while a stream watches: the new SVID (with the new DNS name) is pushed within seconds.
  const ac = new AbortController();
  let streaming: () => void = () => {};
  const started = new Promise<void>((r) => (streaming = r));
  const watched = (async () => {
    for await (const m of client.fetchX509SVID({}, { signal: ac.signal })) {
      streaming();
      const svid = m.svids.find((s) => s.spiffeId === 'spiffe://example.org/hinted');
      if (svid !== undefined && Buffer.from(svid.x509Svid).includes(Buffer.from('hinted-2.example.org'))) return Date.now();
    }
    return undefined;
  })().catch(() => undefined);
  await started;
  const t1 = Date.now();
  const upd = await stack.entry.batchUpdateEntry({ entries: [{ id: id ?? '', dnsNames: ['hinted-2.example.org'] }], inputMask: { dnsNames: true } });
  assert.equal(upd.results[0]?.status?.code, 0, upd.results[0]?.status?.message);
  let pushedAt: number | undefined;
  void watched.then((t) => (pushedAt = t));
  const at = await eventually('the updated SVID on the watching stream', () => pushedAt, { timeoutMs: 15_000 }).finally(() => ac.abort());
  assert.ok(at - t1 < 10_000, `pushed ${at - t1} ms after the update (sync interval 60 s)`);
});
