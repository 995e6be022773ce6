/**
 * WebhookConfigurationStore on the Kubernetes API: GET and JSON-patch of
 * admissionregistration.k8s.io/v1 ValidatingWebhookConfigurations.
 * TODO(k8s-runtime): fold into @ztwim/k8s's generic resource client when it lands; until then
 * @kubernetes/client-node's generated API (loaded on first use) does these two calls.
 */
import type { WebhookConfigurationStore, WebhookConfigurationView } from './ca-bundle-patcher.ts';

/** `kubeconfig` a file path, or '' for the pod's in-cluster config. */
export async function kubeWebhookConfigurationStore(kubeconfig: string): Promise<WebhookConfigurationStore> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (kubeconfig === '') kc.loadFromCluster();
  else kc.loadFromFile(kubeconfig);
  const api = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  const isNotFound = (e: unknown): boolean => (e as { code?: unknown }).code === 404;
  return {
    async get(name): Promise<WebhookConfigurationView | undefined> {
      try {
        const cfg = await api.readValidatingWebhookConfiguration({ name });
        return {
          webhooks: (cfg.webhooks ?? []).map((w) => ({
            name: w.name,
            caBundle: w.clientConfig.caBundle ?? '',
          })),
        };
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    },
    async setCaBundle(name, index, webhookName, caBundle) {
      await api.patchValidatingWebhookConfiguration(
        {
          name,
          body: [
            { op: 'test', path: `/webhooks/${index}/name`, value: webhookName },
            { op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle },
          ],
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
    },
  };
}
