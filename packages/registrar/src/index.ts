// @ztwim/registrar: the workload registrar (spire-controller-manager's job).
export {
  parseManagerConfig,
  loadManagerConfig,
  isNamespaceIgnored,
  DEFAULT_WEBHOOK_PORT,
  DEFAULT_IGNORE_NAMESPACES,
  DEFAULT_GC_INTERVAL_MS,
  DEFAULT_SPIRE_SERVER_SOCKET_PATH,
} from './config/manager-config.ts';
export type { ManagerConfig, ReconcileToggles, LeaderElectionConfig } from './config/manager-config.ts';
export { detectClusterDomain, clusterDomainFromResolvConf } from './config/cluster-domain.ts';
export { dialEntryClient, entryToProto, entryFromProto } from './spire/entry-client.ts';
export type { EntryClient, RegEntry, Selector, BatchStatus } from './spire/entry.ts';
export { planEntries, entryKey, partitionByPrefix, isJoinTokenEntry, outdatedFields } from './reconcile/plan.ts';
export type { Plan, Declared, Declarer } from './reconcile/plan.ts';
export { PassRunner } from './reconcile/pass-runner.ts';
export type { PassRunnerOptions } from './reconcile/pass-runner.ts';
export { RegistrarError, isRegistrarError, REGISTRAR_ERROR_CODES } from './errors.ts';
export type { RegistrarErrorCode } from './errors.ts';
export {
  Template,
  parseTemplate,
  renderSpiffeId,
  templateDataFor,
  objectMetaToGo,
  jsonToGo,
  goFieldName,
  GoFloat,
  GoMap,
  GoStruct,
  NO_VALUE,
  goStruct,
  goStringMap,
  printGoValue,
  goSprintf,
} from './template/index.ts';
export type { TemplateData, RenderOptions, TemplateContext, KubeObjectJson, GoValue, NoValue } from './template/index.ts';
export { parseLabelSelector, matchesLabelSelector, labelKeyError, labelValueError } from './labels.ts';
export type { LabelSelector, LabelSelectorRequirement, LabelSelectorOperator } from './labels.ts';
export {
  parseClusterSPIFFEID,
  parseClusterSPIFFEIDSpec,
  parseClusterStaticEntry,
  parseClusterFederatedTrustDomain,
  parseClusterFederatedTrustDomainSpec,
  parseSelector,
  bundleEndpointUrlError,
} from './crd/parse.ts';
export { SPIRE_GROUP, SPIRE_API_VERSION } from './crd/types.ts';
export type {
  CrdObjectMeta,
  ClusterSPIFFEID,
  ClusterSPIFFEIDSpec,
  ClusterSPIFFEIDStatus,
  ClusterSPIFFEIDStats,
  ClusterStaticEntry,
  ClusterStaticEntrySpec,
  ClusterStaticEntryStatus,
  ClusterFederatedTrustDomain,
  ClusterFederatedTrustDomainSpec,
  BundleEndpointProfile,
  BundleEndpointProfileType,
  ParsedMeta,
  ParsedClusterSPIFFEID,
  ParsedClusterSPIFFEIDSpec,
  ParsedClusterStaticEntry,
  ParsedClusterStaticEntrySpec,
  ParsedClusterFederatedTrustDomain,
  ParsedClusterFederatedTrustDomainSpec,
  ParsedBundleEndpointProfile,
  ParsedSelector,
} from './crd/types.ts';
export {
  reviewAdmission,
  isWebhookPath,
  BadAdmissionRequest,
  CLUSTER_SPIFFE_ID_WEBHOOK_PATH,
  CLUSTER_FEDERATED_TRUST_DOMAIN_WEBHOOK_PATH,
} from './webhook/admission.ts';
export type { AdmissionResponse, AdmissionReviewResponse } from './webhook/admission.ts';
export { AdmissionWebhookServer, WEBHOOK_SPIFFE_ID_PATH } from './webhook/webhook-server.ts';
export type { WebhookServerOptions } from './webhook/webhook-server.ts';
export { serverApiOverSocket } from './webhook/server-api.ts';
export type { WebhookServerApi, MintedSvid } from './webhook/server-api.ts';
export { syncCaBundles } from './webhook/ca-bundle-patcher.ts';
export type { CaBundlePatcherOptions, WebhookConfigurationStore, WebhookConfigurationView } from './webhook/ca-bundle-patcher.ts';
export { startRegistrarWebhook, webhookDnsNames } from './webhook/registrar-webhook.ts';
export type { RegistrarWebhookOptions, RunningRegistrarWebhook } from './webhook/registrar-webhook.ts';
export { kubeWebhookConfigurationStore } from './webhook/kube-webhook-configurations.ts';
export { EntryReconciler } from './reconcile/entry-pass.ts';
export type { EntryPassOptions, PassSummary, PodRef, PodPassResult, CrSource, StatusWriter } from './reconcile/entry-pass.ts';
export { arrayClusterView, podUidsOfEndpoints } from './reconcile/cluster-view.ts';
export type { ClusterView, KubeJson } from './reconcile/cluster-view.ts';
export { renderPodEntry, endpointDnsNames, reconcilesClass, declarePodEntries } from './reconcile/declare.ts';
export { readStaticManifests } from './runtime/static-manifests.ts';
export { startRegistrar, connectKube } from './runtime/registrar.ts';
export type { Registrar, RegistrarDeps } from './runtime/registrar.ts';
export { serveProbes } from './runtime/probes.ts';
export { CLUSTER_SPIFFE_IDS, CLUSTER_STATIC_ENTRIES, CLUSTER_FEDERATED_TRUST_DOMAINS } from './runtime/resources.ts';
