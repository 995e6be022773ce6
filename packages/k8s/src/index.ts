export { createKubeClient, createKubeTransport, createResourceClient, SERVICE_ACCOUNT_DIR, type TransportOptions } from './client-node.ts';
export { kubeClientSource } from './kube-client.ts';
export type { KubeClient, KubeClientSource, KubeNode, KubePod, TokenReviewStatus } from './kube-client.ts';
export { DEFAULT_REQUEST_TIMEOUT_MS, type HttpMethod, type KubeTransport, type TransportRequest } from './kube-transport.ts';
export { exchange, openStream, ExchangeTimeoutError, type HttpAnswer, type HttpExchange } from './http-exchange.ts';
export { KubeApiError, isRetryable, type KubeStatus } from './api-errors.ts';
export {
  objectKey,
  type Condition,
  type KubeList,
  type KubeObject,
  type ListMeta,
  type ManagedFieldsEntry,
  type ObjectMeta,
  type OwnerReference,
  type WatchEvent,
  type WatchEventType,
} from './objects.ts';
export { groupVersionOf, RESOURCES, resourcePath, type ResourceRef } from './resource-ref.ts';
export {
  ResourceClient,
  type ApiResource,
  type ApplyOptions,
  type DeleteOptions,
  type ListOptions,
  type PatchType,
  type ResourceClientOptions,
  type WatchOptions,
  type WriteOptions,
} from './resource-client.ts';
export { Backoff, type BackoffOptions } from './backoff.ts';
export { byNamespace, ObjectStore, type IndexFunc } from './object-store.ts';
export { Informer, type InformerHandlers, type InformerOptions, type InformerStats, type ListWatcher } from './informer.ts';
export { LeaderElector, type Lease, type LeaseClient, type LeaseSpec, type LeaderElectorOptions } from './leader-election.ts';
