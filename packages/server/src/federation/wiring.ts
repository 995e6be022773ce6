import { AcmeCertManager, CertFileWatcher } from '@ztwim/acme';
import { internal, listenError, type Clock, type Logger, type Task } from '@ztwim/core';
import type { TrustDomain } from '@ztwim/spiffe';
import type { DataStore } from '../datastore/datastore.ts';
import { bundleToSpiffeJson } from './bundle-json.ts';
import { startBundleEndpoint, type BundleEndpoint, type BundleEndpointTls } from './bundle-endpoint.ts';
import type { FederationConfig } from './config.ts';
import { FederationRefresher } from './refresher.ts';

export interface FederationDeps {
  readonly config: FederationConfig | undefined;
  readonly dataStore: DataStore;
  readonly trustDomain: TrustDomain;
  readonly clock: Clock;
  readonly log: Logger;
  /** PEM roots trusted beside the system's for https_web endpoints (embedders, tests; `ztwim server run` takes NODE_EXTRA_CA_CERTS). */
  readonly extraWebRootsPem?: string;
  /** PEM roots trusted for the ACME directory beside Node's (tests: pebble's listener CA). */
  readonly acmeDirectoryCaPem?: string;
}

export interface Federation {
  readonly refresher: FederationRefresher;
  /**
   * Starts the refresher and the bundle endpoint (https_spiffe serves `serverTls`). Resolves to
   * the endpoint's background loops (https_web: the certificate files' reload, or ACME renewal)
   * as tasks for the server's runTasks: they stop when its signal aborts.
   */
  start(serverTls: BundleEndpointTls): Promise<Task[]>;
  /** The bundle endpoint's bound port, once started (undefined when none is configured). */
  endpointPort(): number | undefined;
  /** The server SVID was renewed: https_spiffe endpoints serve it from the next handshake. */
  rotateServerTls(tls: BundleEndpointTls): void;
  stop(): Promise<void>;
}

const BUNDLE_CACHE_MS = 1000;
/** autocert (SPIRE's ACME client) renews 30 days before expiry; ztwim also at a third of the lifetime left. */
const ACME_RENEW_BEFORE_MS = 30 * 24 * 3600_000;

/** The server's federation parts: bundle endpoint and bundle refresher, built from the config. */
export function createFederation(d: FederationDeps): Federation {
  const refresher = new FederationRefresher({
    dataStore: d.dataStore,
    clock: d.clock,
    log: d.log.child({ subsystem: 'bundle_client' }),
    relationships: d.config?.federatesWith ?? [],
    ...(d.extraWebRootsPem === undefined ? {} : { extraWebRootsPem: d.extraWebRootsPem }),
  });
  const be = d.config?.bundleEndpoint;
  let endpoint: BundleEndpoint | undefined;
  const stoppers: Array<() => void> = [];
  let cached: { at: number; seq: bigint; json: string } | undefined;
  return {
    refresher,
    async start(serverTls) {
      await refresher.start();
      if (be === undefined) return [];
      const tasks: Task[] = [];
      const log = d.log.child({ subsystem: 'bundle_endpoint' });
      const p = be.profile;
      let tls: BundleEndpointTls | undefined = serverTls;
      let acme: AcmeCertManager | undefined;
      const install = (t: BundleEndpointTls): void => endpoint?.rotate(t);
      if (p.kind === 'https_web' && 'servingCertFile' in p) {
        // Re-read at file_sync_interval and served from the next handshake when both files changed
        // into a matching pair (a half-written pair keeps the current one).
        const f = p.servingCertFile;
        const watcher = new CertFileWatcher({
          certFilePath: f.certFilePath,
          keyFilePath: f.keyFilePath,
          intervalMs: f.fileSyncIntervalMs,
          clock: d.clock,
          logger: log,
          onLoad: install,
        });
        stoppers.push(() => watcher.close());
        tls = await watcher.start();
        tasks.push(watcher.reloadTask());
      } else if (p.kind === 'https_web') {
        // As SPIRE: the certificate is obtained with tls-alpn-01 answered on this endpoint's own
        // port, so the endpoint listens first (refusing handshakes until a certificate is there).
        acme = new AcmeCertManager({
          directoryUrl: p.acme.directoryUrl,
          email: p.acme.email,
          domains: [p.acme.domainName],
          tosAccepted: p.acme.tosAccepted,
          challenge: 'tls-alpn-01',
          cacheDir: p.acme.cacheDir,
          directoryCaPem: d.acmeDirectoryCaPem,
          renewFraction: 1 / 3,
          renewBeforeMs: ACME_RENEW_BEFORE_MS,
          clock: d.clock,
          logger: log,
          onLoad: install,
        });
        const mgr = acme;
        stoppers.push(() => mgr.close());
        tls = undefined;
      }
      endpoint = await startBundleEndpoint({
        host: be.address,
        port: be.port,
        tls,
        ...(acme === undefined ? {} : { alpnCallback: acme.tlsAlpnServerOptions().ALPNCallback }),
        log,
        bundleJson: async () => {
          // As SPIRE's endpoint cache: the datastore is read at most once a second, and the JSON
          // is rebuilt only when the bundle's sequence moved.
          const now = d.clock.nowMs();
          if (cached !== undefined && now - cached.at < BUNDLE_CACHE_MS) return cached.json;
          const b = await d.dataStore.getBundle(d.trustDomain.name);
          if (b === null) throw internal('own bundle missing');
          const json = cached?.seq === b.sequenceNumber ? cached.json : bundleToSpiffeJson(b, be.refreshHintSeconds);
          cached = { at: now, seq: b.sequenceNumber, json };
          return json;
        },
      }).catch((e: unknown) => {
        throw listenError(e, {
          name: 'federation bundle endpoint',
          address: `${be.address}:${be.port}`,
          at: { port: be.port },
          moveWith: 'federation.bundle_endpoint.port in the config',
        });
      });
      if (acme !== undefined) {
        await acme.startInBackground();
        tasks.push(acme.renewalTask());
      }
      return tasks;
    },
    endpointPort: () => endpoint?.port,
    rotateServerTls(tls) {
      if (be?.profile.kind === 'https_spiffe') endpoint?.rotate(tls);
    },
    async stop() {
      for (const s of stoppers.splice(0)) s();
      await refresher.stop();
      await endpoint?.close();
    },
  };
}
