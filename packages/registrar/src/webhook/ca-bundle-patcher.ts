/**
 * Keeps the `caBundle` of every webhook in the named ValidatingWebhookConfigurations equal to the
 * trust bundle's X.509 roots (PEM, base64 as the API wants), as the controller manager does: a
 * pass about every 5 s, writing only when a webhook's caBundle differs, so a rotated CA reaches
 * the API server before the webhook serves a certificate it signed.
 */
import type { Clock, Logger } from '@ztwim/core';
import { internal } from '@ztwim/core';

export interface WebhookConfigurationView {
  /** Webhook names and their current caBundle (base64, '' when unset), in order. */
  readonly webhooks: ReadonlyArray<{ readonly name: string; readonly caBundle: string }>;
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
  readonly clock: Clock;
  readonly log: Logger;
  /** Default 5 s. */
  readonly intervalMs?: number;
}

/** One pass; resolves with how many caBundles were written. */
export async function syncCaBundles(opts: Pick<CaBundlePatcherOptions, 'configurationNames' | 'store' | 'rootsPem' | 'log'>): Promise<number> {
  const pem = await opts.rootsPem();
  if (pem === '') throw internal('the trust bundle has no X.509 roots');
  const want = Buffer.from(pem, 'utf8').toString('base64');
  let written = 0;
  for (const name of opts.configurationNames) {
    const cfg = await opts.store.get(name);
    if (cfg === undefined) {
      opts.log.debug({ webhook_configuration: name }, 'webhook configuration not found');
      continue;
    }
    for (const [i, w] of cfg.webhooks.entries()) {
      if (w.caBundle === want) continue;
      await opts.store.setCaBundle(name, i, w.name, want);
      written++;
      opts.log.info({ webhook_configuration: name, webhook: w.name }, 'webhook caBundle updated');
    }
  }
  return written;
}

/** Runs syncCaBundles now and every interval until `signal` aborts; errors are logged, not fatal. */
export async function runCaBundlePatcher(opts: CaBundlePatcherOptions, signal: AbortSignal): Promise<void> {
  const interval = opts.intervalMs ?? 5000;
  while (!signal.aborted) {
    try {
      await syncCaBundles(opts);
    } catch (e) {
      opts.log.warn({ err: e }, 'webhook caBundle sync failed');
    }
    try {
      await opts.clock.sleep(interval, signal);
    } catch {
      return;
    }
  }
}
