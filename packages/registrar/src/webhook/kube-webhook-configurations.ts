/**
 * WebhookConfigurationStore on the Kubernetes API: GET and JSON-patch of
 * admissionregistration.k8s.io/v1 ValidatingWebhookConfigurations, through @ztwim/k8s's
 * ResourceClient (the registrar's one path to the API server).
 */
import { isZtwimError } from '@ztwim/core';
import type { KubeObject, ResourceClient, ResourceRef } from '@ztwim/k8s';
import type { WebhookConfigurationStore, WebhookConfigurationView } from './ca-bundle-patcher.ts';

const VALIDATING_WEBHOOK_CONFIGURATIONS: ResourceRef = {
  apiVersion: 'admissionregistration.k8s.io/v1',
  resource: 'validatingwebhookconfigurations',
  namespaced: false,
  kind: 'ValidatingWebhookConfiguration',
};

interface ValidatingWebhookConfiguration extends KubeObject {
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string; service?: { name?: string; namespace?: string } } }>;
}

export function kubeWebhookConfigurationStore(client: ResourceClient): WebhookConfigurationStore {
  return {
    async get(name): Promise<WebhookConfigurationView | undefined> {
      try {
        const cfg = await client.get<ValidatingWebhookConfiguration>(VALIDATING_WEBHOOK_CONFIGURATIONS, name);
        return {
          webhooks: (cfg.webhooks ?? []).map((w) => {
            const svc = w.clientConfig?.service;
            return {
              name: w.name,
              caBundle: w.clientConfig?.caBundle ?? '',
              ...(svc === undefined ? {} : { service: { name: svc.name ?? '', namespace: svc.namespace ?? '' } }),
            };
          }),
        };
      } catch (e) {
        if (isZtwimError(e, 'ERR_NOT_FOUND')) return undefined;
        throw e;
      }
    },
    async setCaBundle(name, index, webhookName, caBundle) {
      await client.patch(
        VALIDATING_WEBHOOK_CONFIGURATIONS,
        name,
        [
          { op: 'test', path: `/webhooks/${index}/name`, value: webhookName },
          { op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle },
        ],
        'json',
      );
    },
  };
}
