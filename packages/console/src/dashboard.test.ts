import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { dashboardView, NO_METRICS_HINT } from './dashboard.ts';
import { EntriesPerAgentCache } from './entries-per-agent.ts';

test('without a metrics source the dashboard says so and how to enable it; a failing entry listing is named', async () => {
  const clock = new FakeClock();
  const cache = new EntriesPerAgentCache({
    clock,
    fingerprint: async () => 'f',
    load: async () => {
      throw new Error('server API: connect ENOENT /tmp/x/api.sock');
    },
  });
  const v = await dashboardView(undefined, cache, clock);
  assert.deepEqual(v.metrics, { configured: false, hint: NO_METRICS_HINT });
  assert.match(NO_METRICS_HINT, /telemetry \{ Prometheus/);
  assert.match(NO_METRICS_HINT, /-metricsURL http:\/\/127\.0\.0\.1:9402\/metrics/);
  assert.deepEqual(v.entriesPerAgent, { error: 'server API: connect ENOENT /tmp/x/api.sock' });
});

test('a long count of entries per agent does not hold the dashboard: it answers pending, and the count lands later', async () => {
  const clock = new FakeClock();
  let finish: (() => void) | undefined;
  const cache = new EntriesPerAgentCache({
    clock,
    fingerprint: async () => 'f',
    load: () =>
      new Promise((resolve) => {
        finish = () => resolve({ agents: [{ id: 'spiffe://example.org/spire/agent/x/a', selectors: [] }], entries: [] });
      }),
  });
  const first = dashboardView(undefined, cache, clock);
  await new Promise((r) => setImmediate(r));
  clock.advance(1500);
  assert.deepEqual((await first).entriesPerAgent, { pending: true });
  finish?.();
  const second = await dashboardView(undefined, cache, clock);
  assert.deepEqual('rows' in second.entriesPerAgent ? second.entriesPerAgent.rows : second.entriesPerAgent, [
    { agentId: 'spiffe://example.org/spire/agent/x/a', entries: 0 },
  ]);
});
