import { readFile } from 'node:fs/promises';
import { listenError, type Clock, type Logger, internal } from '@ztwim/core';
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
  /** PEM roots trusted beside the system's for https_web endpoints (ZTWIM_FEDERATION_EXTRA_ROOTS). */
  readonly extraWebRootsPem?: string;
}

export interface Federation {
  readonly refresher: FederationRefresher;
  /** Starts the refresher and the bundle endpoint (https_spiffe serves `serverTls`). */
  start(serverTls: BundleEndpointTls): Promise<void>;
  /** The bundle endpoint's bound port, once started (undefined when none is configured). */
  endpointPort(): number | undefined;
  /** The server SVID was renewed: https_spiffe endpoints serve it from the next handshake. */
  rotateServerTls(tls: BundleEndpointTls): void;
  stop(): Promise<void>;
}

const BUNDLE_CACHE_MS = 1000;

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
  let cancelSync: (() => void) | undefined;
  let stopped = false;
  let cached: { at: number; seq: bigint; json: string } | undefined;
  const readFileTls = async (): Promise<BundleEndpointTls> => {
    if (be?.profile.kind !== 'https_web') throw internal('not https_web');
    const f = be.profile.servingCertFile;
    const [certPem, keyPem] = await Promise.all([readFile(f.certFilePath, 'utf8'), readFile(f.keyFilePath, 'utf8')]);
    return { certPem, keyPem };
  };
  return {
    refresher,
    async start(serverTls) {
      await refresher.start();
      if (be === undefined) return;
      const log = d.log.child({ subsystem: 'bundle_endpoint' });
      let tls = serverTls;
      if (be.profile.kind === 'https_web') tls = await readFileTls();
      endpoint = await startBundleEndpoint({
        host: be.address,
        port: be.port,
        tls,
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
      if (be.profile.kind === 'https_web') {
        // The serving certificate is re-read at file_sync_interval and served when it changed.
        let last = `${tls.certPem}\n${tls.keyPem}`;
        const every = be.profile.servingCertFile.fileSyncIntervalMs;
        const sync = (): void => {
          if (stopped) return;
          cancelSync = d.clock.setTimer(every, () => {
            readFileTls()
              .then((t) => {
                const now = `${t.certPem}\n${t.keyPem}`;
                if (now !== last) {
                  endpoint?.rotate(t);
                  last = now;
                  log.info({}, 'Reloaded the bundle endpoint serving certificate');
                }
              })
              .catch((e: unknown) => log.error({ error: (e as Error).message }, 'Failed to reload the bundle endpoint serving certificate'))
              .finally(sync);
          });
        };
        sync();
      }
    },
    endpointPort: () => endpoint?.port,
    rotateServerTls(tls) {
      if (be?.profile.kind === 'https_spiffe') endpoint?.rotate(tls);
    },
    async stop() {
      stopped = true;
      cancelSync?.();
      await refresher.stop();
      await endpoint?.close();
    },
  };
}
