/**
 * The webhook as the registrar runs it: the HTTPS admission server with its own X509-SVID, and
 * the caBundle patcher beside it, both on the same SPIRE Server API. DNS name of the certificate:
 * `<serviceName>.<serviceNamespace>.svc`, the name the API server checks for service webhooks.
 */
import type { Clock, Logger } from '@ztwim/core';
import { runCaBundlePatcher, type WebhookConfigurationStore } from './ca-bundle-patcher.ts';
import type { WebhookServerApi } from './server-api.ts';
import { AdmissionWebhookServer } from './webhook-server.ts';

export interface RegistrarWebhookOptions {
  readonly host: string;
  readonly port: number;
  readonly trustDomain: string;
  readonly serviceName: string;
  readonly serviceNamespace: string;
  readonly serverApi: WebhookServerApi;
  readonly store: WebhookConfigurationStore;
  /** ValidatingWebhookConfigurations whose caBundle is kept equal to the bundle roots. */
  readonly webhookConfigurationNames: readonly string[];
  readonly clock: Clock;
  readonly log: Logger;
  readonly caBundleIntervalMs?: number;
}

export interface RunningRegistrarWebhook {
  readonly server: AdmissionWebhookServer;
  stop(): Promise<void>;
}

export async function startRegistrarWebhook(opts: RegistrarWebhookOptions): Promise<RunningRegistrarWebhook> {
  const server = await AdmissionWebhookServer.start({
    host: opts.host,
    port: opts.port,
    trustDomain: opts.trustDomain,
    dnsNames: [`${opts.serviceName}.${opts.serviceNamespace}.svc`],
    serverApi: opts.serverApi,
    clock: opts.clock,
    log: opts.log,
  });
  const ac = new AbortController();
  const patcher = runCaBundlePatcher(
    {
      configurationNames: opts.webhookConfigurationNames,
      store: opts.store,
      rootsPem: () => opts.serverApi.x509RootsPem(),
      clock: opts.clock,
      log: opts.log,
      ...(opts.caBundleIntervalMs === undefined ? {} : { intervalMs: opts.caBundleIntervalMs }),
    },
    ac.signal,
  );
  return {
    server,
    async stop() {
      ac.abort();
      await patcher;
      await server.close();
    },
  };
}
