// Entry changes reach a ztwim agent at once through the server's hints (ztwim.agent.v1.AgentHints),
// not at its next sync: with a 60 s sync interval, a new entry and an entry update are served within
// seconds. (Against spire-server, which has no such service, the agent keeps to its sync interval:
// the SPIRE-server suites in test/interop run that combination.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { cancelOnBreak } from '@ztwim/proto';
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
  const { agent } = await stack.startAgent({ syncInterval: '60s' });
  const client = stack.workload(agent.socketPath);
  // The agent's first sync found nothing for it; only a hint can bring the entry before 60 s.
  await delay(500);
  const t0 = Date.now();
  const [id] = await stack.createEntries([{ parentId: agent.agentId, path: '/hinted', selectors: [`unix:uid:${uid}`] }]);
  let got = false;
  while (!got && Date.now() - t0 < 15_000) {
    try {
      for await (const m of cancelOnBreak((signal) => client.fetchX509SVID({}, { signal }))) {
        got = m.svids.some((s) => s.spiffeId === 'spiffe://example.org/hinted');
        break;
      }
    } catch {
      /* no identity yet */
    }
    if (!got) await delay(100);
  }
  const createMs = Date.now() - t0;
  assert.ok(got, 'the new entry was served');
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
  const at = await Promise.race([watched, delay(15_000).then(() => undefined)]);
  ac.abort();
  assert.ok(at !== undefined, 'the updated SVID reached the watching stream');
  assert.ok(at - t1 < 10_000, `pushed ${at - t1} ms after the update (sync interval 60 s)`);
});
