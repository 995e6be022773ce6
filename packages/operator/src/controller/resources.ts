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
 * The kinds the operator generates (§2.2), watched by label. OpenShift and Prometheus kinds
 * (the last three) are watched only while the apiserver serves them (served-apis.ts).
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
  { apiVersion: 'route.openshift.io/v1', kind: 'Route' },
  { apiVersion: 'security.openshift.io/v1', kind: 'SecurityContextConstraints' },
  { apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor' },
];

/** An object an operand generates only under some settings or API groups. */
export interface WithdrawableObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  /** In the operand namespace (else cluster-scoped). */
  readonly namespaced: boolean;
}

const inNs = (apiVersion: string, kind: string, name: string): WithdrawableObject => ({ apiVersion, kind, name, namespaced: true });
const routeObj = (name: string) => inNs('route.openshift.io/v1', 'Route', name);
const monitorObj = (name: string) => inNs('monitoring.coreos.com/v1', 'ServiceMonitor', name);
const sccObj = (name: string): WithdrawableObject => ({ apiVersion: 'security.openshift.io/v1', kind: 'SecurityContextConstraints', name, namespaced: false });
const certReader = (name: string) => [inNs('rbac.authorization.k8s.io/v1', 'Role', name), inNs('rbac.authorization.k8s.io/v1', 'RoleBinding', name)];

/**
 * What each operand renders only when asked (a managed Route, a ServiceMonitor, the router's
 * external-cert reader RBAC) or when OpenShift's API groups are served (SCCs). A pass that no
 * longer renders one deletes it if it exists and this CR owns it (ZTWIM leaves a disabled
 * Route in place; here `managedRoute: "false"` removes it). The render tests check these names.
 */
export const WITHDRAWABLE: Readonly<Record<OperandKind, readonly WithdrawableObject[]>> = {
  SpireServer: [routeObj('spire-server-federation'), monitorObj('spire-server'), ...certReader('spire-server-external-cert-reader')],
  SpireAgent: [sccObj('spire-agent'), monitorObj('spire-agent')],
  SpiffeCSIDriver: [sccObj('spire-spiffe-csi-driver')],
  SpireOIDCDiscoveryProvider: [routeObj('spire-oidc-discovery-provider'), ...certReader('spire-oidc-external-cert-reader')],
};

/**
 * Condition types that exist only while their object or note applies: a pass that produces none
 * of them drops the old one (e.g. OpenShiftObjectsSkipped once the groups are served).
 */
export const TRANSIENT_CONDITION_TYPES: ReadonlySet<string> = new Set([
  'OpenShiftObjectsSkipped',
  'ServiceMonitorSkipped',
  'DeprecatedFieldsConverted',
  'RouteAvailable',
  'ServiceMonitorAvailable',
  'SecurityContextConstraintsAvailable',
]);

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
