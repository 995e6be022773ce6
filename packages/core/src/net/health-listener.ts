// SPIRE's `health_checks` listener, shared by the server and the agent: an HTTP server whose
// live_path and ready_path answer 200 or 503 with a small JSON body, for Kubernetes probes
// (`httpGet` on /live and /ready, as SPIRE's and Red Hat's manifests configure them).
import type { Section } from '../config/schema.ts';
import { listenError } from './listen-error.ts';

export interface HealthChecksConfig {
  readonly bindAddress: string;
  readonly bindPort: number;
  readonly livePath: string;
  readonly readyPath: string;
}

/** Reads `health_checks { listener_enabled bind_address bind_port live_path ready_path }` with SPIRE's defaults; undefined when not enabled. */
export function readHealthChecks(root: Section): HealthChecksConfig | undefined {
  const hc = root.section('health_checks');
  if (hc === undefined) return undefined;
  const enabled = hc.bool('listener_enabled') ?? false;
  const bindAddress = hc.string('bind_address') ?? 'localhost';
  const bindPort = hc.number('bind_port', { integer: true, min: 0, max: 65535 }) ?? 80;
  const livePath = hc.string('live_path') ?? '/live';
  const readyPath = hc.string('ready_path') ?? '/ready';
  hc.done();
  return enabled ? { bindAddress, bindPort, livePath, readyPath } : undefined;
}

/** A probe's answer: ok (with details for the 200 body, if any), or why not (the reason goes into the 503 body). */
export type ProbeResult =
  { readonly ok: true; readonly details?: Readonly<Record<string, string | number | boolean>> } | { readonly ok: false; readonly reason: string };
export type Probe = () => ProbeResult | Promise<ProbeResult>;

export interface HealthListener {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves the two probes; a listen failure names the listener and the config key that moves it. */
export async function serveHealthChecks(cfg: HealthChecksConfig, probes: { live: Probe; ready: Probe }): Promise<HealthListener> {
  // Loaded here, not with @ztwim/core: only a config with health_checks needs node:http.
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const probe =
      req.method !== 'GET' && req.method !== 'HEAD' ? undefined : path === cfg.livePath ? probes.live : path === cfg.readyPath ? probes.ready : undefined;
    if (probe === undefined) {
      res.writeHead(404).end();
      return;
    }
    Promise.resolve()
      .then(probe)
      .catch((e: unknown): ProbeResult => ({ ok: false, reason: e instanceof Error ? e.message : String(e) }))
      .then((r) => {
        res.writeHead(r.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(r.ok ? JSON.stringify(r.details ?? {}) : JSON.stringify({ error: r.reason }));
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.bindPort, cfg.bindAddress, () => resolve());
  }).catch((e: unknown) => {
    throw listenError(e, {
      name: 'health check listener',
      address: `${cfg.bindAddress}:${cfg.bindPort}`,
      at: { port: cfg.bindPort },
      moveWith: 'health_checks.bind_port in the config',
    });
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : cfg.bindPort,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
