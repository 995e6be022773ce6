/**
 * The data SPIRE's controller manager gives its templates (pkg/spireentry `templateData`):
 * `.TrustDomain`, `.ClusterName`, `.ClusterDomain`, `.PodMeta` (*v1.ObjectMeta), `.PodSpec`
 * (*v1.PodSpec), `.NodeMeta`, `.NodeSpec` (*v1.NodeSpec). Templates name Go fields
 * (`.PodMeta.UID`, `.PodSpec.ServiceAccountName`), so the Kubernetes JSON (camelCase, zero
 * values omitted) is mapped back onto the Go structs: every field of ObjectMeta, PodSpec and
 * NodeSpec exists with its Go zero value when the JSON omits it, and an unknown field is an error
 * as in Go. Nested objects (containers, securityContext, ...) map their JSON keys to Go names by
 * the Kubernetes naming rule (capitalised, acronyms upper-case: `hostIP` → `HostIP`); their
 * fields exist only when the JSON has them.
 */
import { GoFloat, GoMap, GoStruct, type GoValue } from './values.ts';
import type { TemplateData } from './template.ts';

export interface TemplateContext {
  readonly trustDomain: string;
  readonly clusterName: string;
  readonly clusterDomain: string;
}

/** A Kubernetes object as the API serves it (JSON). */
export interface KubeObjectJson {
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly spec?: Readonly<Record<string, unknown>>;
}

/** Kind of a known Go field: s string, i int, b bool, p pointer, m map[string]string, l slice, t Time, tp *Time. */
type FieldKind = 's' | 'i' | 'b' | 'p' | 'm' | 'l' | 't' | 'tp';
type FieldTable = ReadonlyArray<readonly [json: string, go: string, kind: FieldKind]>;

const OBJECT_META: FieldTable = [
  ['name', 'Name', 's'],
  ['generateName', 'GenerateName', 's'],
  ['namespace', 'Namespace', 's'],
  ['selfLink', 'SelfLink', 's'],
  ['uid', 'UID', 's'],
  ['resourceVersion', 'ResourceVersion', 's'],
  ['generation', 'Generation', 'i'],
  ['creationTimestamp', 'CreationTimestamp', 't'],
  ['deletionTimestamp', 'DeletionTimestamp', 'tp'],
  ['deletionGracePeriodSeconds', 'DeletionGracePeriodSeconds', 'p'],
  ['labels', 'Labels', 'm'],
  ['annotations', 'Annotations', 'm'],
  ['ownerReferences', 'OwnerReferences', 'l'],
  ['finalizers', 'Finalizers', 'l'],
  ['managedFields', 'ManagedFields', 'l'],
];

const POD_SPEC: FieldTable = [
  ['volumes', 'Volumes', 'l'],
  ['initContainers', 'InitContainers', 'l'],
  ['containers', 'Containers', 'l'],
  ['ephemeralContainers', 'EphemeralContainers', 'l'],
  ['restartPolicy', 'RestartPolicy', 's'],
  ['terminationGracePeriodSeconds', 'TerminationGracePeriodSeconds', 'p'],
  ['activeDeadlineSeconds', 'ActiveDeadlineSeconds', 'p'],
  ['dnsPolicy', 'DNSPolicy', 's'],
  ['nodeSelector', 'NodeSelector', 'm'],
  ['serviceAccountName', 'ServiceAccountName', 's'],
  ['serviceAccount', 'DeprecatedServiceAccount', 's'],
  ['automountServiceAccountToken', 'AutomountServiceAccountToken', 'p'],
  ['nodeName', 'NodeName', 's'],
  ['hostNetwork', 'HostNetwork', 'b'],
  ['hostPID', 'HostPID', 'b'],
  ['hostIPC', 'HostIPC', 'b'],
  ['shareProcessNamespace', 'ShareProcessNamespace', 'p'],
  ['securityContext', 'SecurityContext', 'p'],
  ['imagePullSecrets', 'ImagePullSecrets', 'l'],
  ['hostname', 'Hostname', 's'],
  ['subdomain', 'Subdomain', 's'],
  ['affinity', 'Affinity', 'p'],
  ['schedulerName', 'SchedulerName', 's'],
  ['tolerations', 'Tolerations', 'l'],
  ['hostAliases', 'HostAliases', 'l'],
  ['priorityClassName', 'PriorityClassName', 's'],
  ['priority', 'Priority', 'p'],
  ['dnsConfig', 'DNSConfig', 'p'],
  ['readinessGates', 'ReadinessGates', 'l'],
  ['runtimeClassName', 'RuntimeClassName', 'p'],
  ['enableServiceLinks', 'EnableServiceLinks', 'p'],
  ['preemptionPolicy', 'PreemptionPolicy', 'p'],
  ['overhead', 'Overhead', 'm'],
  ['topologySpreadConstraints', 'TopologySpreadConstraints', 'l'],
  ['setHostnameAsFQDN', 'SetHostnameAsFQDN', 'p'],
  ['os', 'OS', 'p'],
  ['hostUsers', 'HostUsers', 'p'],
  ['schedulingGates', 'SchedulingGates', 'l'],
  ['resourceClaims', 'ResourceClaims', 'l'],
  ['resources', 'Resources', 'p'],
  ['hostnameOverride', 'HostnameOverride', 'p'],
];

const NODE_SPEC: FieldTable = [
  ['podCIDR', 'PodCIDR', 's'],
  ['podCIDRs', 'PodCIDRs', 'l'],
  ['providerID', 'ProviderID', 's'],
  ['unschedulable', 'Unschedulable', 'b'],
  ['taints', 'Taints', 'l'],
  ['configSource', 'ConfigSource', 'p'],
  ['externalID', 'DoNotUseExternalID', 's'],
];

/** JSON keys that are Go maps wherever they appear (so `index` works on them). */
const MAP_KEYS = new Set(['labels', 'annotations', 'nodeSelector', 'limits', 'requests', 'overhead', 'matchLabels', 'capacity', 'allocatable']);

const ACRONYMS: Readonly<Record<string, string>> = {
  id: 'ID',
  uid: 'UID',
  ip: 'IP',
  ips: 'IPs',
  cidr: 'CIDR',
  cidrs: 'CIDRs',
  dns: 'DNS',
  url: 'URL',
  tcp: 'TCP',
  udp: 'UDP',
  sctp: 'SCTP',
  fqdn: 'FQDN',
  os: 'OS',
  ipc: 'IPC',
  pid: 'PID',
  api: 'API',
  http: 'HTTP',
  https: 'HTTPS',
  tls: 'TLS',
  uri: 'URI',
  cpu: 'CPU',
  gid: 'GID',
  ttl: 'TTL',
  csi: 'CSI',
  iscsi: 'ISCSI',
  nfs: 'NFS',
  rbd: 'RBD',
  fc: 'FC',
};

/** `hostIP` → `HostIP`, `containerPort` → `ContainerPort`, `uid` → `UID`. */
export function goFieldName(json: string): string {
  const words = json.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+/g) ?? [json];
  return words.map((w) => ACRONYMS[w.toLowerCase()] ?? w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** time.Time.String() in UTC: `2026-12-07 01:02:03 +0000 UTC` (nanoseconds when present). */
function goTime(v: unknown): string {
  if (typeof v !== 'string' || v === '') return '0001-01-01 00:00:00 +0000 UTC';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return v;
  const frac = /\.(\d+)/.exec(v)?.[1]?.replace(/0+$/, '');
  return (
    `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}${frac ? `.${frac}` : ''} +0000 UTC`
  );
}

/** Any JSON value as a Go value; objects become structs with Go field names. */
export function jsonToGo(v: unknown, key = ''): GoValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? v : new GoFloat(v);
  if (Array.isArray(v)) return v.map((e) => jsonToGo(e));
  if (typeof v === 'object') {
    const rec = v as Record<string, unknown>;
    if (MAP_KEYS.has(key)) {
      return new GoMap(new Map(Object.entries(rec).map(([k, e]) => [k, jsonToGo(e)])), 'map[string]string', '');
    }
    return new GoStruct('struct', new Map(Object.entries(rec).map(([k, e]) => [goFieldName(k), jsonToGo(e, k)])));
  }
  return String(v);
}

function fromTable(typeName: string, table: FieldTable, json: Readonly<Record<string, unknown>> | undefined): GoStruct {
  const src = json ?? {};
  const fields = new Map<string, GoValue>();
  for (const [jsonName, goName, kind] of table) {
    const v = src[jsonName];
    switch (kind) {
      case 's':
        fields.set(goName, typeof v === 'string' ? v : '');
        break;
      case 'i':
        fields.set(goName, typeof v === 'number' ? v : 0);
        break;
      case 'b':
        fields.set(goName, v === true);
        break;
      case 'm':
        fields.set(goName, v === undefined || v === null ? new GoMap(new Map(), 'map[string]string', '', true) : jsonToGo(v, 'labels'));
        break;
      case 'l':
        fields.set(goName, Array.isArray(v) ? v.map((e) => jsonToGo(e)) : []);
        break;
      case 't':
        fields.set(goName, goTime(v));
        break;
      case 'tp':
        fields.set(goName, v === undefined || v === null ? null : goTime(v));
        break;
      case 'p':
        fields.set(goName, jsonToGo(v, jsonName));
        break;
    }
  }
  return new GoStruct(typeName, fields);
}

export function objectMetaToGo(metadata: Readonly<Record<string, unknown>> | undefined): GoStruct {
  return fromTable('*v1.ObjectMeta', OBJECT_META, metadata);
}

/** The controller manager's template data for one pod on one node. */
export function templateDataFor(ctx: TemplateContext, pod: KubeObjectJson, node: KubeObjectJson): TemplateData {
  return new GoStruct(
    '*spireentry.templateData',
    new Map<string, GoValue>([
      ['TrustDomain', ctx.trustDomain],
      ['ClusterName', ctx.clusterName],
      ['ClusterDomain', ctx.clusterDomain],
      ['PodMeta', objectMetaToGo(pod.metadata)],
      ['PodSpec', fromTable('*v1.PodSpec', POD_SPEC, pod.spec)],
      ['NodeMeta', objectMetaToGo(node.metadata)],
      ['NodeSpec', fromTable('*v1.NodeSpec', NODE_SPEC, node.spec)],
    ]),
  );
}
