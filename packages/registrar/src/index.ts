// @ztwim/registrar: the workload registrar (spire-controller-manager's job).
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
  SPIRE_GROUP,
  SPIRE_API_VERSION,
} from './crd/index.ts';
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
} from './crd/index.ts';
export {
  reviewAdmission,
  isWebhookPath,
  BadAdmissionRequest,
  CLUSTER_SPIFFE_ID_WEBHOOK_PATH,
  CLUSTER_FEDERATED_TRUST_DOMAIN_WEBHOOK_PATH,
  AdmissionWebhookServer,
  WEBHOOK_SPIFFE_ID_PATH,
  serverApiOverSocket,
  syncCaBundles,
  runCaBundlePatcher,
  kubeWebhookConfigurationStore,
  startRegistrarWebhook,
} from './webhook/index.ts';
export type {
  AdmissionResponse,
  AdmissionReviewResponse,
  WebhookServerOptions,
  WebhookServerApi,
  MintedSvid,
  CaBundlePatcherOptions,
  WebhookConfigurationStore,
  WebhookConfigurationView,
  RegistrarWebhookOptions,
  RunningRegistrarWebhook,
} from './webhook/index.ts';
