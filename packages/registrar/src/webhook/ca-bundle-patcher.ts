/**
 * Keeps the `caBundle` of every webhook in the named ValidatingWebhookConfigurations equal to the
 * trust bundle's X.509 roots (PEM, base64 as the API wants), as the controller manager does: a
 * pass about every 5 s (registrar-webhook.ts runs it), writing only when a webhook's caBundle
 * differs, so a rotated CA reaches the API server before the webhook serves a certificate it
 * signed.
 */
import type { Logger } from '@ztwim/core';
import { internal } from '@ztwim/core';

export interface WebhookConfigurationView {
  /**
   * Webhook names, their current caBundle (base64, '' when unset) and the Service they call
   * (clientConfig.service; absent for URL webhooks), in order.
   */
  readonly webhooks: ReadonlyArray<{
    readonly name: string;
    readonly caBundle: string;
    readonly service?: { readonly name: string; readonly namespace: string };
  }>;
}

/** Where the configurations live (the Kubernetes API; a fake in tests). */
export interface WebhookConfigurationStore {
  /** undefined when the configuration does not exist. */
  get(name: string): Promise<WebhookConfigurationView | undefined>;
  /** Sets webhook `index`'s caBundle, failing if webhook `index` is no longer `webhookName`. */
  setCaBundle(name: string, index: number, webhookName: string, caBundle: string): Promise<void>;
}

export interface CaBundlePatcherOptions {
  readonly configurationNames: readonly string[];
  readonly store: WebhookConfigurationStore;
  /** The roots to publish, PEM. */
  readonly rootsPem: () => Promise<string>;
  readonly log: Logger;
}

/** One pass (registrar-webhook.ts runs one every 5 s); resolves with how many caBundles were written. */
export async function syncCaBundles(opts: CaBundlePatcherOptions): Promise<number> {
  const pem = await opts.rootsPem();
  if (pem === '') throw internal('the trust bundle has no X.509 roots');
  const want = Buffer.from(pem, 'utf8').toString('base64');
  let written = 0;
  for (const name of opts.configurationNames) {
    const cfg = await opts.store.get(name);
    if (cfg === undefined) {
      opts.log.debug({ webhook_configuration: name }, 'Webhook configuration not found');
      continue;
    }
    for (const [i, w] of cfg.webhooks.entries()) {
      if (w.caBundle === want) continue;
      await opts.store.setCaBundle(name, i, w.name, want);
      written++;
      opts.log.info({ webhook_configuration: name, webhook: w.name }, 'Webhook caBundle updated');
    }
  }
  return written;
}
