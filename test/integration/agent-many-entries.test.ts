// More entries than one SyncAuthorizedEntries page (SPIRE pages at 500): 1,200 entries for one
// agent all reach its cache and are served; a deletion and an update among them propagate.
// Against our server, and against the real SPIRE v1.13.0 server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cancelOnBreak } from '@ztwim/proto';
import { eventually } from '@ztwim/testkit';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';
import { startAgentEnv, type AgentEnv } from '../interop/lib/ztwim-agent-env.ts';

let stack: Stack;
let spire: AgentEnv | undefined;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.close();
  await spire?.close();
});

const N = 1200;

test(`${N} entries for one agent: all synced and served, then a delete and an update propagate`, { timeout: 180_000 }, async () => {
  const uid = process.getuid?.() ?? 0;
  const { agent } = await stack.startAgent({ syncInterval: '1s' });
  const specs = Array.from({ length: N }, (_, i) => ({ parentId: agent.agentId, path: `/many/${String(i).padStart(4, '0')}`, selectors: [`unix:uid:${uid}`] }));
  // Plus entries of another agent that must not arrive.
  const ids = await stack.createEntries(specs);
  await stack.createEntries([{ parentId: 'spiffe://example.org/spire/agent/join_token/someone-else', path: '/not-mine', selectors: [`unix:uid:${uid}`] }]);
  const client = stack.workload(agent.socketPath);
  const svidIds = async (): Promise<string[]> => {
    try {
      for await (const m of cancelOnBreak((signal) => client.fetchX509SVID({}, { signal }))) return m.svids.map((s) => s.spiffeId);
    } catch {
      /* not yet */
    }
    return [];
  };
  let last: string[] = [];
  const waitFor = (what: string, ok: (v: string[]) => boolean, ms: number): Promise<string[]> =>
    eventually(
      what,
      async () => {
        last = await svidIds();
        return ok(last) && last;
      },
      { timeoutMs: ms, intervalMs: 500 },
    ).catch((e: unknown) => assert.fail(`${String(e)}; served ${last.length}`));
  const got = await waitFor(`all ${N} SVIDs`, (v) => v.length >= N, 120_000);
  assert.equal(got.length, N, `served ${got.length} of ${N}`);
  assert.deepEqual([...got].sort(), specs.map((s) => `spiffe://example.org${s.path}`).sort());
  assert.ok(!got.includes('spiffe://example.org/not-mine'));

  // Delete one, change another's SPIFFE ID.
  const del = await stack.entry.batchDeleteEntry({ ids: [ids[7] ?? ''] });
  assert.equal(del.results[0]?.status?.code, 0);
  const upd = await stack.entry.batchUpdateEntry({
    entries: [{ id: ids[8] ?? '', spiffeId: { trustDomain: 'example.org', path: '/many/renamed' } }],
    inputMask: { spiffeId: true },
  });
  assert.equal(upd.results[0]?.status?.code, 0, upd.results[0]?.status?.message);
  const after2 = await waitFor('the delete and the update', (v) => v.length === N - 1 && v.includes('spiffe://example.org/many/renamed'), 30_000);
  assert.equal(after2.length, N - 1);
  assert.ok(!after2.includes('spiffe://example.org/many/0007'));
  assert.ok(!after2.includes('spiffe://example.org/many/0008'));
  assert.ok(after2.includes('spiffe://example.org/many/renamed'));
});

test(`${N} entries for our agent from the real SPIRE server: all synced and served`, { timeout: 240_000 }, async () => {
  const uid = process.getuid?.() ?? 0;
  spire = await startAgentEnv({ syncInterval: '1s' });
  const env = spire;
  const want = Array.from({ length: N }, (_, i) => `spiffe://example.org/spire-many/${String(i).padStart(4, '0')}`);
  const file = env.tmp.write(
    'entries.json',
    JSON.stringify({
      entries: want.map((id) => ({ parent_id: env.agent.agentId, spiffe_id: id, selectors: [{ type: 'unix', value: `uid:${uid}` }] })),
    }),
  );
  env.server.cli(['entry', 'create', '-data', file]);
  const { client } = env.workload();
  let got: string[] = [];
  await eventually(
    `all ${N} SVIDs from the agent of the SPIRE server`,
    async () => {
      for await (const m of cancelOnBreak((signal) => client.fetchX509SVID({}, { signal }))) {
        got = m.svids.map((s) => s.spiffeId);
        break;
      }
      return got.length >= N;
    },
    { timeoutMs: 180_000, intervalMs: 1000, retryErrors: true },
  ).catch((e: unknown) => assert.fail(`${String(e)}; served ${got.length}`));
  assert.equal(got.length, N, `served ${got.length} of ${N}`);
  assert.deepEqual([...got].sort(), want);
});
