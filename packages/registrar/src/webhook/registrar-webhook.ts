/**
 * The webhook as `ztwim registrar` runs it, spire-controller-manager's webhook manager: on every
 * replica (it needs no leadership), a loop every 5 s that reads the named
 * ValidatingWebhookConfiguration and
 *
 * - takes the webhook's DNS names from it: `<service>.<namespace>.svc` of every webhook's
 *   clientConfig.service, sorted and deduplicated (the names the API server checks);
 * - once the configuration exists, starts the HTTPS admission server with an X509-SVID for those
 *   names, and mints a new one when they change;
 * - keeps every webhook's caBundle equal to the bundle's X.509 roots (syncCaBundles).
 *
 * Where the controller manager exits at start when the configuration is missing, this waits for it
 * (logging once), so a registrar deployed without webhook.yaml reconciles entries as before and
 * opens no port.
 */
import type { Clock, Logger } from '@ztwim/core';
import { syncCaBundles, type WebhookConfigurationStore, type WebhookConfigurationView } from './ca-bundle-patcher.ts';
import type { WebhookServerApi } from './server-api.ts';
import { AdmissionWebhookServer } from './webhook-server.ts';

export interface RegistrarWebhookOptions {
  /** Listen address ('' = every interface) and port (config `webhook.host`, `webhook.port`). */
  readonly host: string;
  readonly port: number;
  readonly trustDomain: string;
  readonly serverApi: WebhookServerApi;
  readonly store: WebhookConfigurationStore;
  /** The ValidatingWebhookConfiguration served (`validatingWebhookConfigurationName`). */
  readonly webhookConfigurationName: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Default 5 s, as the controller manager's webhook and bundle timers. */
  readonly intervalMs?: number;
}

export interface RunningRegistrarWebhook {
  /** The admission server, once the configuration has been seen and a certificate minted. */
  server(): AdmissionWebhookServer | undefined;
  stop(): Promise<void>;
}

/** controller-runtime's serviceDNSName over every webhook, sorted, without duplicates. */
export function webhookDnsNames(cfg: WebhookConfigurationView): string[] {
  const names = new Set<string>();
  for (const w of cfg.webhooks) {
    if (w.service !== undefined && w.service.name !== '' && w.service.namespace !== '') names.add(`${w.service.name}.${w.service.namespace}.svc`);
  }
  return [...names].sort();
}

const sameNames = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Starts the loop; resolves at once (the first round runs in the background). */
export function startRegistrarWebhook(opts: RegistrarWebhookOptions): RunningRegistrarWebhook {
  const ac = new AbortController();
  const name = opts.webhookConfigurationName;
  let server: AdmissionWebhookServer | undefined;
  let missingLogged = false;

  const round = async (): Promise<void> => {
    const cfg = await opts.store.get(name);
    if (cfg === undefined) {
      if (!missingLogged) opts.log.info({ webhook_configuration: name }, 'Webhook configuration not found: the admission webhook waits for it');
      missingLogged = true;
      return;
    }
    missingLogged = false;
    const dnsNames = webhookDnsNames(cfg);
    if (server === undefined) {
      opts.log.info({ webhook_configuration: name, dns_names: dnsNames, reason: 'initializing' }, 'Minting webhook certificate');
      const started = await AdmissionWebhookServer.start({
        host: opts.host,
        port: opts.port,
        trustDomain: opts.trustDomain,
        dnsNames,
        serverApi: opts.serverApi,
        clock: opts.clock,
        log: opts.log,
      });
      if (ac.signal.aborted) {
        await started.close();
        return;
      }
      server = started;
    } else if (!sameNames(server.dnsNames, dnsNames)) {
      opts.log.info({ webhook_configuration: name, dns_names: dnsNames, reason: 'stale DNS names' }, 'Minting webhook certificate');
      await server.reissue(dnsNames);
    }
    await syncCaBundles({ configurationNames: [name], store: opts.store, rootsPem: () => opts.serverApi.x509RootsPem(), log: opts.log });
  };

  const loop = (async () => {
    while (!ac.signal.aborted) {
      try {
        await round();
      } catch (e) {
        opts.log.warn({ webhook_configuration: name, err: e instanceof Error ? e.message : String(e) }, 'Admission webhook round failed');
      }
      try {
        await opts.clock.sleep(opts.intervalMs ?? 5000, ac.signal);
      } catch {
        return;
      }
    }
  })();

  return {
    server: () => server,
    async stop() {
      ac.abort();
      await loop;
      await server?.close();
      server = undefined;
    },
  };
}
