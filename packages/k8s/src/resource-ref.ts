// Which REST collection a ResourceClient call addresses: group/version/resource, and whether the
// resource lives in namespaces. Paths follow the apiserver's layout:
// core `/api/v1/...`, named groups `/apis/<group>/<version>/...`.

export interface ResourceRef {
  /** `v1` for the core group, else `<group>/<version>` (the objects' apiVersion). */
  readonly apiVersion: string;
  /** Plural resource name (`configmaps`, `leases`, `clusterspiffeids`). */
  readonly resource: string;
  readonly namespaced: boolean;
  /** The objects' kind (sent by apply when an object has none). */
  readonly kind?: string;
}

/** Splits an apiVersion into group ('' for core) and version. */
export function groupVersionOf(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** `/api/v1` or `/apis/<group>/<version>`. */
export function groupVersionPath(apiVersion: string): string {
  const { group, version } = groupVersionOf(apiVersion);
  return group === '' ? `/api/${encodeURIComponent(version)}` : `/apis/${encodeURIComponent(group)}/${encodeURIComponent(version)}`;
}

/**
 * The path of a collection or of one object (and its subresource). A namespaced resource without
 * a namespace is addressed across all namespaces (list and watch only).
 */
export function resourcePath(ref: ResourceRef, namespace: string | undefined, name?: string, subresource?: string): string {
  let p = groupVersionPath(ref.apiVersion);
  if (ref.namespaced && namespace !== undefined && namespace !== '') p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${encodeURIComponent(ref.resource)}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) p += `/${encodeURIComponent(subresource)}`;
  return p;
}

/** Query string of the defined, non-empty parameters (with its `?`), or ''. */
export function queryOf(params: Readonly<Record<string, string | number | boolean | undefined>>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/** Resources the runtime itself uses, and the common core ones. */
export const RESOURCES = {
  namespaces: { apiVersion: 'v1', resource: 'namespaces', namespaced: false, kind: 'Namespace' },
  nodes: { apiVersion: 'v1', resource: 'nodes', namespaced: false, kind: 'Node' },
  pods: { apiVersion: 'v1', resource: 'pods', namespaced: true, kind: 'Pod' },
  configMaps: { apiVersion: 'v1', resource: 'configmaps', namespaced: true, kind: 'ConfigMap' },
  secrets: { apiVersion: 'v1', resource: 'secrets', namespaced: true, kind: 'Secret' },
  services: { apiVersion: 'v1', resource: 'services', namespaced: true, kind: 'Service' },
  endpoints: { apiVersion: 'v1', resource: 'endpoints', namespaced: true, kind: 'Endpoints' },
  serviceAccounts: { apiVersion: 'v1', resource: 'serviceaccounts', namespaced: true, kind: 'ServiceAccount' },
  leases: { apiVersion: 'coordination.k8s.io/v1', resource: 'leases', namespaced: true, kind: 'Lease' },
  customResourceDefinitions: {
    apiVersion: 'apiextensions.k8s.io/v1',
    resource: 'customresourcedefinitions',
    namespaced: false,
    kind: 'CustomResourceDefinition',
  },
} as const satisfies Record<string, ResourceRef>;
