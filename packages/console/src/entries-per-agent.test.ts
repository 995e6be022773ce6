import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { countEntriesPerAgent, EntriesPerAgentCache } from './entries-per-agent.ts';
import type { ExplainEntry } from './explain.ts';

const TD = 'spiffe://example.org';
const entry = (id: string, parentId: string, spiffeId: string, selectors: string[]): ExplainEntry => ({
  id,
  parentId,
  spiffeId,
  selectors: selectors.map((s) => ({ type: s.slice(0, s.indexOf(':')), value: s.slice(s.indexOf(':') + 1) })),
  federatesWith: [],
  expiresAt: 0,
  hint: '',
});

const A = `${TD}/spire/agent/join_token/a`;
const B = `${TD}/spire/agent/k8s_psat/demo/b`;
const ENTRIES = [
  entry('1', A, `${TD}/w1`, ['unix:uid:1']),
  entry('2', A, `${TD}/w2`, ['unix:uid:2']),
  // a node alias for agents in cluster demo, and two workloads under it
  entry('3', `${TD}/spire/server`, `${TD}/cluster/demo`, ['k8s_psat:cluster:demo']),
  entry('4', `${TD}/cluster/demo`, `${TD}/w4`, ['k8s:ns:a']),
  entry('5', `${TD}/cluster/demo`, `${TD}/w5`, ['k8s:ns:b']),
  entry('6', `${TD}/cluster/demo`, `${TD}/w6`, ['k8s:ns:c']),
  entry('7', `${TD}/nobody`, `${TD}/w7`, ['unix:uid:7']),
];

test("counts each agent's reachable entries (direct children and node-alias descendants), most first", () => {
  const rows = countEntriesPerAgent(
    [
      { id: A, selectors: [] },
      { id: B, selectors: [{ type: 'k8s_psat', value: 'cluster:demo' }] },
      { id: `${TD}/spire/agent/x/idle`, selectors: [] },
    ],
    ENTRIES,
  );
  assert.deepEqual(rows, [
    { agentId: B, entries: 3 },
    { agentId: A, entries: 2 },
    { agentId: `${TD}/spire/agent/x/idle`, entries: 0 },
  ]);
});

test('the cache lists entries again only when the server changed, and at most once per interval', async () => {
  const clock = new FakeClock();
  let fingerprint = '2/7/1/5.0';
  let loads = 0;
  const cache = new EntriesPerAgentCache({
    clock,
    minIntervalMs: 30_000,
    fingerprint: async () => fingerprint,
    load: async () => {
      loads++;
      return { agents: [{ id: A, selectors: [] }], entries: ENTRIES.slice(0, loads === 1 ? 1 : 2) };
    },
  });
  const [x, y] = await Promise.all([cache.get(), cache.get()]);
  assert.equal(loads, 1, 'two dashboards at once: one listing');
  assert.equal(x, y);
  assert.equal(x.rows[0]?.entries, 1);
  fingerprint = '2/8/1/5.1';
  assert.equal((await cache.get()).rows[0]?.entries, 1, 'younger than the interval: cached');
  assert.equal(loads, 1);
  clock.advance(30_000);
  assert.equal((await cache.get()).rows[0]?.entries, 2, 'older and the server changed: listed again');
  assert.equal(loads, 2);
  clock.advance(60_000);
  await cache.get();
  assert.equal(loads, 2, 'older but nothing changed: cached');
});
