// The operator's own kinds and the labels of what it generates (digest §1.0, §2.1, §2.3).
import type { OperandKind } from './aggregate.ts';
import type { ResourceKind } from './kube-port.ts';

export const OPERATOR_API_VERSION = 'operator.openshift.io/v1alpha1';
export const SINGLETON = 'cluster';

export type CrKind = 'ZeroTrustWorkloadIdentityManager' | OperandKind;

export const CR_RESOURCES: Readonly<Record<CrKind, ResourceKind>> = {
  ZeroTrustWorkloadIdentityManager: {
    apiVersion: OPERATOR_API_VERSION,
    resource: 'zerotrustworkloadidentitymanagers',
    namespaced: false,
    kind: 'ZeroTrustWorkloadIdentityManager',
  },
  SpireServer: { apiVersion: OPERATOR_API_VERSION, resource: 'spireservers', namespaced: false, kind: 'SpireServer' },
  SpireAgent: { apiVersion: OPERATOR_API_VERSION, resource: 'spireagents', namespaced: false, kind: 'SpireAgent' },
  SpiffeCSIDriver: { apiVersion: OPERATOR_API_VERSION, resource: 'spiffecsidrivers', namespaced: false, kind: 'SpiffeCSIDriver' },
  SpireOIDCDiscoveryProvider: {
    apiVersion: OPERATOR_API_VERSION,
    resource: 'spireoidcdiscoveryproviders',
    namespaced: false,
    kind: 'SpireOIDCDiscoveryProvider',
  },
};

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'zero-trust-workload-identity-manager';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';

/** app.kubernetes.io/component of each operand's objects (§2.3). */
export const COMPONENT_OF: Readonly<Record<OperandKind, string>> = {
  SpireServer: 'control-plane',
  SpireAgent: 'node-agent',
  SpiffeCSIDriver: 'csi',
  SpireOIDCDiscoveryProvider: 'discovery',
};

/** The operand whose objects carry this component label. */
export function operandOfComponent(component: string | undefined): OperandKind | undefined {
  for (const [k, c] of Object.entries(COMPONENT_OF)) if (c === component) return k as OperandKind;
  return undefined;
}

/**
 * The kinds the operator generates (§2.2), watched by label. OpenShift and Prometheus kinds are
 * watched only when the apiserver serves them.
 */
export const OWNED_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet' },
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' },
  { apiVersion: 'storage.k8s.io/v1', kind: 'CSIDriver' },
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration' },
  { apiVersion: 'spire.spiffe.io/v1alpha1', kind: 'ClusterSPIFFEID' },
];

/**
 * The condition type an object of this kind reports into (§1.6 per kind); the server's three
 * ConfigMaps each have their own.
 */
export function conditionTypeFor(owner: OperandKind, o: { kind?: string; metadata: { name?: string } }, bundleConfigMap: string): string {
  switch (o.kind) {
    case 'ServiceAccount':
      return 'ServiceAccountAvailable';
    case 'Service':
      return 'ServiceAvailable';
    case 'ClusterRole':
    case 'ClusterRoleBinding':
    case 'Role':
    case 'RoleBinding':
      return 'RBACAvailable';
    case 'StatefulSet':
      return 'StatefulSetAvailable';
    case 'DaemonSet':
      return 'DaemonSetAvailable';
    case 'Deployment':
      return 'DeploymentAvailable';
    case 'CSIDriver':
      return 'CSIDriverAvailable';
    case 'ClusterSPIFFEID':
      return 'ClusterSPIFFEIDAvailable';
    case 'ValidatingWebhookConfiguration':
      return 'ValidatingWebhookAvailable';
    case 'SecurityContextConstraints':
      return 'SecurityContextConstraintsAvailable';
    case 'Route':
      return 'RouteAvailable';
    case 'ServiceMonitor':
      return 'ServiceMonitorAvailable';
    case 'ConfigMap':
      if (owner !== 'SpireServer') return 'ConfigMapAvailable';
      if (o.metadata.name === bundleConfigMap) return 'BundleConfigAvailable';
      if (o.metadata.name === 'spire-controller-manager') return 'ControllerManagerConfigAvailable';
      return 'ServerConfigMapAvailable';
    default:
      return `${o.kind ?? 'Object'}Available`;
  }
}
