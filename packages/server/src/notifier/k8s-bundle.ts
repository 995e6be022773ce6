// SPIRE's `Notifier "k8sbundle"`: on start ("bundle loaded") and on every change of the trust
// domain's bundle ("bundle updated") the server writes the bundle's X.509 roots, as concatenated
// PEM CERTIFICATE blocks, into one key of a Kubernetes ConfigMap, where spire-agent (or our agent)
// reads its bootstrap bundle. As SPIRE: the ConfigMap must exist (the notifier never creates it),
// the write is a read-modify-write (GET, then a strategic-merge PATCH carrying the
// resourceVersion read) retried on a 409 Conflict, so several servers writing at once converge
// on the newest bundle; a failure on start fails the start, a later failure is logged.
import { isZtwimError, ZtwimError, type Logger } from '@ztwim/core';
import type { ResourceClient } from '@ztwim/k8s';
import { derToPem } from '@ztwim/spiffe';
import type { K8sBundleNotifierConfig } from './k8s-bundle-config.ts';

/** The two calls the notifier makes (tests hand it an in-memory one). */
export interface ConfigMapClient {
  /** The ConfigMap's resourceVersion; ERR_NOT_FOUND when it does not exist. */
  getConfigMap(namespace: string, name: string): Promise<{ readonly resourceVersion: string }>;
  /**
   * Strategic-merge PATCH of `data` keys carrying `resourceVersion`, so the apiserver refuses it
   * with 409 Conflict (fields.http_status) when the object changed since it was read.
   */
  patchConfigMapData(namespace: string, name: string, resourceVersion: string, data: Readonly<Record<string, string>>): Promise<void>;
}

/** ConfigMapClient on @ztwim/k8s's ResourceClient. */
export function configMapClientOf(rc: ResourceClient): ConfigMapClient {
  const ref = { apiVersion: 'v1', resource: 'configmaps', namespaced: true, kind: 'ConfigMap' } as const;
  return {
    async getConfigMap(namespace, name) {
      return { resourceVersion: (await rc.get(ref, name, namespace)).metadata.resourceVersion ?? '' };
    },
    async patchConfigMapData(namespace, name, resourceVersion, data) {
      await rc.patch(ref, name, { metadata: { resourceVersion }, data }, 'strategic', { namespace });
    },
  };
}

/** The plugin_data of `Notifier "k8sbundle"` (SPIRE's keys), defaults applied. */
// Its config and defaults live apart (k8s-bundle-config.ts): the config parser reads them for
// every server, this module is loaded only when the notifier is configured.
export { K8S_BUNDLE_DEFAULTS, type K8sBundleNotifierConfig } from './k8s-bundle-config.ts';

/** client-go's retry.DefaultRetry makes 5 attempts. */
const CONFLICT_ATTEMPTS = 5;

/** The ConfigMap value: every X.509 root as a PEM CERTIFICATE block, in bundle order (SPIRE's bundleData). */
export function bundleData(x509Authorities: readonly Uint8Array[]): string {
  return x509Authorities.map((der) => derToPem(der, 'CERTIFICATE')).join('');
}

export class K8sBundleNotifier {
  private readonly client: ConfigMapClient;
  private readonly config: K8sBundleNotifierConfig;
  private readonly log: Logger;
  /** Writes one at a time, in event order: a slow older write never lands after a newer one. */
  private queue: Promise<void> = Promise.resolve();

  constructor(opts: { client: ConfigMapClient; config: K8sBundleNotifierConfig; log: Logger }) {
    this.client = opts.client;
    this.config = opts.config;
    this.log = opts.log;
  }

  /** Where it writes: `<namespace>/<config map>` key `<key>`. */
  get target(): string {
    return `${this.config.namespace}/${this.config.configMap} key ${this.config.configMapKey}`;
  }

  /**
   * Writes the roots `current()` returns at the time of the write (read after the ConfigMap, as
   * SPIRE loads the bundle after the GET, so a race between servers ends with the newest bundle).
   * Rejects with a ZtwimError naming the ConfigMap and the cause.
   */
  notify(event: 'bundle loaded' | 'bundle updated', current: () => Promise<readonly Uint8Array[]>): Promise<void> {
    const run = this.queue.then(() => this.write(event, current));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(event: string, current: () => Promise<readonly Uint8Array[]>): Promise<void> {
    const { namespace, configMap, configMapKey } = this.config;
    const where = `${namespace}/${configMap}`;
    for (let attempt = 1; ; attempt++) {
      let rv: string;
      try {
        rv = (await this.client.getConfigMap(namespace, configMap)).resourceVersion;
      } catch (e) {
        throw notifierError(`unable to get object ${where}`, e);
      }
      const data = bundleData(await current());
      try {
        await this.client.patchConfigMapData(namespace, configMap, rv, { [configMapKey]: data });
      } catch (e) {
        // Another writer got in between the GET and the PATCH: read again (client-go's
        // RetryOnConflict, without its 10 ms pause: the next GET is the wait).
        if (isConflict(e) && attempt < CONFLICT_ATTEMPTS) continue;
        throw notifierError(`unable to patch object ${where}`, e);
      }
      this.log.debug({ notifier: 'k8sbundle', event, config_map: where, key: configMapKey }, 'Notifier handled event');
      return;
    }
  }
}

function isConflict(e: unknown): boolean {
  return isZtwimError(e) && e.fields['http_status'] === 409;
}

function notifierError(what: string, e: unknown): ZtwimError {
  const code = isZtwimError(e) ? e.code : 'ERR_INTERNAL';
  return new ZtwimError(code, `notifier(k8sbundle): ${what}: ${(e as Error).message}`, { cause: e });
}
