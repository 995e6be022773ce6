// What the server and agent record (counters, a latency timer, gauges), apart from prom-client:
// a process without a `telemetry { Prometheus { ... } }` block records into NO_METRICS and never
// loads prom-client (~175 KB of code, plus the default-metrics collectors it starts), as SPIRE
// serves metrics only where the config asks for them. loadMetrics() loads it when asked.
import type { PrometheusMetrics } from './metrics.ts';

/** The instruments a component records into; prom-client's Counter/Histogram/Gauge fit it. */
export interface Metrics {
  readonly rpcCalls: { inc(labels: { service: string; method: string; code: string }): void };
  readonly rpcLatency: { startTimer(labels: { service: string; method: string }): () => unknown };
  readonly svidsMinted: { inc(labels: { type: string }): void };
  /** Seconds the CA took to sign one SVID, by type (x509, jwt). */
  readonly svidSignDuration: { observe(labels: { type: string }, seconds: number): void };
  readonly caRotations: { inc(labels: { kind: string; event: string }): void };
  readonly entries: { set(value: number): void };
  readonly agents: { set(value: number): void };
  /** Unix time (s) of the last datastore read that succeeded. */
  readonly datastoreLastSuccess: { set(value: number): void };
}

const ignore = (): void => undefined;

/** Records nothing: the metrics of a process that serves none. */
export const NO_METRICS: Metrics = {
  rpcCalls: { inc: ignore },
  rpcLatency: { startTimer: () => ignore },
  svidsMinted: { inc: ignore },
  svidSignDuration: { observe: ignore },
  caRotations: { inc: ignore },
  entries: { set: ignore },
  agents: { set: ignore },
  datastoreLastSuccess: { set: ignore },
};

/** Loads prom-client and makes a component's registry (see PrometheusMetrics). */
export async function loadMetrics(opts: { prefix: string; defaultMetrics?: boolean }): Promise<PrometheusMetrics> {
  const { PrometheusMetrics } = await import('./metrics.ts');
  return new PrometheusMetrics(opts);
}
