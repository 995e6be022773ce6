import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one provider, in a Registry of its own. */
export class OidcMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<'route' | 'code'>;
  private readonly duration: Histogram<'route'>;
  private readonly publishedKeys: Gauge;
  private readonly keySetUpdatedAt: Gauge;
  private readonly keySetUpdates: Counter;
  private readonly certNotAfter: Gauge;
  private readonly certReloads: Counter<'result'>;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    this.requests = new Counter({
      name: 'ztwim_oidc_http_requests_total',
      help: 'HTTP requests served by the OIDC discovery provider',
      labelNames: ['route', 'code'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'ztwim_oidc_http_request_duration_seconds',
      help: 'Time to serve an OIDC discovery provider request',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5],
      registers: [registry],
    });
    this.publishedKeys = new Gauge({
      name: 'ztwim_oidc_published_keys',
      help: 'Keys currently published at /keys',
      registers: [registry],
    });
    this.keySetUpdatedAt = new Gauge({
      name: 'ztwim_oidc_key_set_updated_timestamp_seconds',
      help: 'When the published key set last changed (unix seconds)',
      registers: [registry],
    });
    this.keySetUpdates = new Counter({
      name: 'ztwim_oidc_key_set_updates_total',
      help: 'Key set changes seen from the key source',
      registers: [registry],
    });
    this.certNotAfter = new Gauge({
      name: 'ztwim_oidc_serving_cert_not_after_timestamp_seconds',
      help: 'Expiry of the current TLS serving certificate (unix seconds)',
      registers: [registry],
    });
    this.certReloads = new Counter({
      name: 'ztwim_oidc_serving_cert_reloads_total',
      help: 'Serving certificate loads (file reloads and ACME issuances)',
      labelNames: ['result'],
      registers: [registry],
    });
  }

  private readonly requestChildren = new Map<string, { inc(): void }>();
  private readonly durationChildren = new Map<string, { observe(v: number): void }>();

  /** Starts timing a request; call the result with the status code when it finishes. */
  startRequest(route: string): (code: number) => void {
    const start = process.hrtime.bigint();
    return (code) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      let d = this.durationChildren.get(route);
      if (d === undefined) {
        d = this.duration.labels(route);
        this.durationChildren.set(route, d);
      }
      d.observe(seconds);
      const key = `${route}\u0000${code}`;
      let c = this.requestChildren.get(key);
      if (c === undefined) {
        c = this.requests.labels(route, String(code));
        this.requestChildren.set(key, c);
      }
      c.inc();
    };
  }

  keySetUpdated(count: number, at: Date): void {
    this.publishedKeys.set(count);
    this.keySetUpdatedAt.set(Math.floor(at.getTime() / 1000));
    this.keySetUpdates.inc();
  }

  servingCertLoaded(notAfter: Date): void {
    this.certNotAfter.set(Math.floor(notAfter.getTime() / 1000));
    this.certReloads.inc({ result: 'ok' });
  }

  servingCertFailed(): void {
    this.certReloads.inc({ result: 'error' });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
