// What every generated object shares: the labels of digest §2.3, the owner hint, config hashes,
// the CommonConfig pod settings and the test-only hostNetwork override.
import { createHash } from 'node:crypto';
import type { ResolvedContext } from './context.ts';

export type OwnerKind = 'SpireServer' | 'SpireAgent' | 'SpiffeCSIDriver' | 'SpireOIDCDiscoveryProvider';

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [k: string]: unknown;
}

/** One generated object and how the controller treats it. */
export interface RenderedObject {
  /** The operand CR that owns it (ownerReference). */
  readonly owner: OwnerKind;
  readonly object: KubeObject;
  /** Cluster-scoped (ClusterRole, CSIDriver, webhook configuration, ClusterSPIFFEID, SCC). */
  readonly clusterScoped: boolean;
  /** Created when absent and never updated (the bundle ConfigMap, which the server writes). */
  readonly createOnly?: boolean;
}

export const INSTANCE = 'cluster-zero-trust-workload-identity-manager';
export const PART_OF = 'zero-trust-workload-identity-manager';

export type AppName = 'spire-server' | 'spire-agent' | 'spiffe-csi-driver' | 'spiffe-oidc-discovery-provider' | 'spire-controller-manager';
export type Component = 'control-plane' | 'node-agent' | 'csi' | 'discovery';

/** The selector labels (name, instance, component). */
export function selectorLabels(name: AppName, component: Component): Record<string, string> {
  return { 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': INSTANCE, 'app.kubernetes.io/component': component };
}

/** All labels of a generated object: the user's CommonConfig labels, then the standard ones (which win). */
export function objectLabels(name: AppName, component: Component, ctx: ResolvedContext, user: Record<string, string> | undefined): Record<string, string> {
  return {
    ...(user ?? {}),
    ...selectorLabels(name, component),
    'app.kubernetes.io/part-of': PART_OF,
    'app.kubernetes.io/managed-by': PART_OF,
    'app.kubernetes.io/version': ctx.version,
  };
}

/** SHA-256 (hex) of a rendered config: the pod-template annotation that rolls pods on change. */
export function configHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export const HASH_ANNOTATIONS = {
  server: 'ztwim.openshift.io/spire-server-config-hash',
  registrar: 'ztwim.openshift.io/spire-controller-manager-config-hash',
  agent: 'ztwim.openshift.io/spire-agent-config-hash',
  oidc: 'ztwim.openshift.io/spire-oidc-discovery-provider-config-hash',
} as const;

/** CommonConfig as it lands in a pod spec / container. */
export interface PodSettings {
  readonly resources?: Record<string, unknown>;
  readonly affinity?: Record<string, unknown>;
  readonly tolerations?: ReadonlyArray<Record<string, unknown>>;
  readonly nodeSelector?: Record<string, string>;
}

/** The pod-spec fields from CommonConfig and the hostNetwork override. */
export function podSpecExtras(c: PodSettings, ctx: ResolvedContext): Record<string, unknown> {
  return {
    ...(ctx.hostNetwork ? { hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' } : {}),
    ...(c.affinity === undefined ? {} : { affinity: c.affinity }),
    ...(c.tolerations === undefined ? {} : { tolerations: c.tolerations }),
    ...(c.nodeSelector === undefined ? {} : { nodeSelector: c.nodeSelector }),
  };
}

export function resourcesOf(c: PodSettings): Record<string, unknown> {
  return c.resources === undefined ? {} : { resources: c.resources };
}

export const meta = (name: string, labels: Record<string, string>, namespace?: string, annotations?: Record<string, string>): KubeObject['metadata'] => ({
  name,
  ...(namespace === undefined ? {} : { namespace }),
  labels,
  ...(annotations === undefined || Object.keys(annotations).length === 0 ? {} : { annotations }),
});

export const nodeNameEnv = { name: 'MY_NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };

/** A ServiceAccount. */
export function serviceAccount(name: string, labels: Record<string, string>, ctx: ResolvedContext): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name, labels, ctx.namespace) };
}

export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

/** A (Cluster)Role and its (Cluster)RoleBinding to one ServiceAccount of the operand namespace. */
export function roleWithBinding(
  cluster: boolean,
  name: string,
  rules: readonly PolicyRule[],
  sa: string,
  labels: Record<string, string>,
  ctx: ResolvedContext,
): [KubeObject, KubeObject] {
  const ns = cluster ? undefined : ctx.namespace;
  const kind = cluster ? 'ClusterRole' : 'Role';
  return [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata: meta(name, labels, ns), rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: `${kind}Binding`,
      metadata: meta(name, labels, ns),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ctx.namespace }],
    },
  ];
}

/** A ServiceMonitor for a Service's metrics port. */
export function serviceMonitor(
  name: string,
  labels: Record<string, string>,
  selector: Record<string, string>,
  port: string,
  interval: string,
  ctx: ResolvedContext,
): KubeObject {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: meta(name, labels, ctx.namespace),
    spec: { selector: { matchLabels: selector }, namespaceSelector: { matchNames: [ctx.namespace] }, endpoints: [{ port, interval, path: '/metrics' }] },
  };
}

/** A container's command and arguments: `ztwim <sub...> <args>` or the SPIRE image's entrypoint with the args. */
export function command(ctx: ResolvedContext, ztwimSub: readonly string[], args: readonly string[]): Record<string, unknown> {
  return ctx.variant === 'ztwim' ? { command: ['ztwim', ...ztwimSub], args: [...args] } : { args: [...args] };
}

/** The head of an operand's container: its name, image, pull policy and {@link command}. */
export function operandContainer(
  ctx: ResolvedContext,
  name: string,
  image: string,
  ztwimSub: readonly string[],
  args: readonly string[],
): Record<string, unknown> {
  return { name, image, imagePullPolicy: 'IfNotPresent', ...command(ctx, ztwimSub, args) };
}

/** An apps/v1 workload: its labels, selector, pod template (with the config-hash annotations). */
export function workload(
  kind: 'DaemonSet' | 'Deployment' | 'StatefulSet',
  name: string,
  labels: Record<string, string>,
  selector: Record<string, string>,
  ctx: ResolvedContext,
  o: { readonly podSpec: Record<string, unknown>; readonly annotations?: Record<string, string>; readonly spec?: Record<string, unknown> },
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: meta(name, labels, ctx.namespace),
    spec: {
      ...(kind === 'DaemonSet' ? { updateStrategy: { type: 'RollingUpdate' } } : {}),
      ...o.spec,
      selector: { matchLabels: selector },
      template: { metadata: { labels, ...(o.annotations === undefined ? {} : { annotations: o.annotations }) }, spec: o.podSpec },
    },
  };
}

export type ConfigName = 'serverConf' | 'registrarConfig' | 'agentConf' | 'oidcConf';

/** What rendering one operand gives. */
export interface OperandRender {
  readonly objects: readonly RenderedObject[];
  /** Pod-template annotation → SHA-256 of the config it covers. */
  readonly configHashes: Readonly<Record<string, string>>;
  readonly configs: Readonly<Partial<Record<ConfigName, string>>>;
}

/** Collects one operand's objects with its owner hint. */
export function collector(owner: OwnerKind): {
  readonly objects: RenderedObject[];
  add(object: KubeObject, clusterScoped?: boolean, createOnly?: boolean): void;
} {
  const objects: RenderedObject[] = [];
  return {
    objects,
    add(object, clusterScoped = false, createOnly = false) {
      objects.push({ owner, object, clusterScoped, ...(createOnly ? { createOnly } : {}) });
    },
  };
}
