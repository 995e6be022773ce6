// The spire.spiffe.io resources the registrar watches and writes status on.
import type { ResourceRef } from '@ztwim/k8s';

export const CLUSTER_SPIFFE_IDS: ResourceRef = {
  apiVersion: 'spire.spiffe.io/v1alpha1',
  resource: 'clusterspiffeids',
  namespaced: false,
  kind: 'ClusterSPIFFEID',
};
export const CLUSTER_STATIC_ENTRIES: ResourceRef = {
  apiVersion: 'spire.spiffe.io/v1alpha1',
  resource: 'clusterstaticentries',
  namespaced: false,
  kind: 'ClusterStaticEntry',
};
export const CLUSTER_FEDERATED_TRUST_DOMAINS: ResourceRef = {
  apiVersion: 'spire.spiffe.io/v1alpha1',
  resource: 'clusterfederatedtrustdomains',
  namespaced: false,
  kind: 'ClusterFederatedTrustDomain',
};
