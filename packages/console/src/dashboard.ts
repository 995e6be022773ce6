// GET /api/dashboard: the traffic figures scraped from the server's metrics (or why there are
// none and how to get them) and the cached entries per agent. The CA timeline is drawn from
// /api/server's authorities, which the dashboard loads anyway.
import { asError, type Clock } from '@ztwim/core';
import type { EntriesPerAgent, EntriesPerAgentCache } from './entries-per-agent.ts';
import type { MetricsView, ServerMetricsFeed } from './server-metrics.ts';

export type DashboardMetrics = ({ readonly configured: true } & MetricsView) | { readonly configured: false; readonly hint: string };

export interface DashboardView {
  readonly metrics: DashboardMetrics;
  /** `pending` while a count runs longer than the dashboard waits for it (it goes on; a reload shows it). */
  readonly entriesPerAgent: EntriesPerAgent | { readonly error: string } | { readonly pending: true };
}

/** How long a dashboard request waits for a count of entries per agent before answering without it. */
const COUNT_WAIT_MS = 1500;

export const NO_METRICS_HINT =
  "No metrics source: the console reads SVIDs issued and signing times from the server's Prometheus endpoint. " +
  'Give the server a telemetry { Prometheus { host = "127.0.0.1" port = 9402 } } block and start the console with ' +
  '-metricsURL http://127.0.0.1:9402/metrics (ztwim up does this unless -metricsPort 0).';

export async function dashboardView(feed: ServerMetricsFeed | undefined, perAgent: EntriesPerAgentCache, clock: Clock): Promise<DashboardView> {
  let cancel = (): void => undefined;
  const entriesPerAgent = await Promise.race<DashboardView['entriesPerAgent']>([
    perAgent.get().then(
      (v) => v,
      (e: unknown) => ({ error: asError(e).message }),
    ),
    new Promise((resolve) => {
      cancel = clock.setTimer(COUNT_WAIT_MS, () => resolve({ pending: true }));
    }),
  ]);
  cancel();
  return {
    metrics: feed === undefined ? { configured: false, hint: NO_METRICS_HINT } : { configured: true, ...feed.view() },
    entriesPerAgent,
  };
}
