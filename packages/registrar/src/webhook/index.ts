export {
  reviewAdmission,
  isWebhookPath,
  BadAdmissionRequest,
  CLUSTER_SPIFFE_ID_WEBHOOK_PATH,
  CLUSTER_FEDERATED_TRUST_DOMAIN_WEBHOOK_PATH,
} from './admission.ts';
export type { AdmissionResponse, AdmissionReviewResponse } from './admission.ts';
export { AdmissionWebhookServer, WEBHOOK_SPIFFE_ID_PATH } from './webhook-server.ts';
export type { WebhookServerOptions } from './webhook-server.ts';
export { serverApiOverSocket } from './server-api.ts';
export type { WebhookServerApi, MintedSvid } from './server-api.ts';
export { syncCaBundles, runCaBundlePatcher } from './ca-bundle-patcher.ts';
export type { CaBundlePatcherOptions, WebhookConfigurationStore, WebhookConfigurationView } from './ca-bundle-patcher.ts';
export { startRegistrarWebhook } from './registrar-webhook.ts';
export type { RegistrarWebhookOptions, RunningRegistrarWebhook } from './registrar-webhook.ts';
export { kubeWebhookConfigurationStore } from './kube-webhook-configurations.ts';
