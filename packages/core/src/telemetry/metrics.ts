import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics } from './metrics-sink.ts';
import { listenTcp } from '../net/listen.ts';

/**
 * Prometheus metrics for one process component. Names live here, in one place; labels are
 * singular and always present. Each component owns its own Registry (no global singleton),
 * so tests and several components in one process (`ztwim up`) never collide. Loaded only by
 * loadMetrics() (metrics-sink.ts), when a config asks for a metrics listener.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry: Registry;
  readonly rpcCalls: Counter<'service' | 'method' | 'code'>;
  readonly rpcLatency: Histogram<'service' | 'method'>;
  readonly svidsMinted: Counter<'type'>;
  readonly svidSignDuration: Histogram<'type'>;
  readonly caRotations: Counter<'kind' | 'event'>;
  readonly entries: Gauge;
  readonly agents: Gauge;
  readonly datastoreLastSuccess: Gauge;
  readonly #prefix: string;

  constructor(opts: { prefix: string; defaultMetrics?: boolean }) {
    this.registry = new Registry();
    const p = opts.prefix;
    this.#prefix = p;
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: `${p}_` });
    this.rpcCalls = new Counter({
      name: `${p}_rpc_calls_total`,
      help: 'RPC calls by service, method and gRPC status code',
      labelNames: ['service', 'method', 'code'],
      registers: [this.registry],
    });
    this.rpcLatency = new Histogram({
      name: `${p}_rpc_duration_seconds`,
      help: 'RPC latency',
      labelNames: ['service', 'method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    this.svidsMinted = new Counter({
      name: `${p}_svids_minted_total`,
      help: 'SVIDs minted by type (x509, jwt)',
      labelNames: ['type'],
      registers: [this.registry],
    });
    // SPIRE counts the same signings as server_ca.sign.x509_svid / server_ca.sign.jwt_svid and times
    // none of them; this histogram is ztwim's, in seconds as Prometheus wants durations.
    this.svidSignDuration = new Histogram({
      name: `${p}_server_ca_sign_duration_seconds`,
      help: 'Time the CA took to sign one SVID, by type (x509, jwt)',
      labelNames: ['type'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
    this.caRotations = new Counter({
      name: `${p}_ca_rotation_events_total`,
      help: 'CA/JWT key rotation events by kind and event (prepare, activate, prune)',
      labelNames: ['kind', 'event'],
      registers: [this.registry],
    });
    this.entries = new Gauge({ name: `${p}_registration_entries`, help: 'Registration entries in the datastore', registers: [this.registry] });
    this.agents = new Gauge({ name: `${p}_attested_agents`, help: 'Attested agents in the datastore', registers: [this.registry] });
    this.datastoreLastSuccess = new Gauge({
      name: `${p}_datastore_last_success_timestamp_seconds`,
      help: 'Unix time of the last datastore read that succeeded',
      registers: [this.registry],
    });
  }

  /**
   * An agent's server connection: `<prefix>_server_connected{server_address}` is 1 for the server
   * it uses, read when scraped, `<prefix>_server_failovers_total` counts `failedOver()` calls and
   * `<prefix>_server_rebalances_total` counts `rebalanced()` calls.
   */
  serverConnection(address: () => string | undefined): { failedOver(): void; rebalanced(): void } {
    const p = this.#prefix;
    new Gauge({
      name: `${p}_server_connected`,
      help: 'The server the agent is connected to (1, labelled with its address)',
      labelNames: ['server_address'],
      registers: [this.registry],
      collect() {
        this.reset();
        const a = address();
        if (a !== undefined) this.set({ server_address: a }, 1);
      },
    });
    const failovers = new Counter({ name: `${p}_server_failovers_total`, help: 'Times the agent moved to another server', registers: [this.registry] });
    const rebalances = new Counter({
      name: `${p}_server_rebalances_total`,
      help: 'Times rebalancing moved the agent to another server after a fail-over',
      registers: [this.registry],
    });
    return { failedOver: () => failovers.inc(), rebalanced: () => rebalances.inc() };
  }

  /** Serves this registry's `GET /metrics` on host:port (serveMetrics). */
  serve(host: string, port: number): ReturnType<typeof serveMetrics> {
    return serveMetrics(this.registry, host, port);
  }
}

/** Serves `GET /metrics` for a registry; resolves once listening. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`),
    );
  });
  const bound = await listenTcp(server, port, host);
  return {
    server,
    port: bound,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
