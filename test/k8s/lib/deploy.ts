// deploy/k8s as the tests use it: the manifests and configs users apply, read from the tree and
// adjusted only where a test on the shared cluster must differ (its own namespace, names of
// cluster-scoped objects, ports, paths), so the end-to-end test proves the shipped files.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../interop/lib/peers.ts';

export const DEPLOY_DIR = join(REPO_ROOT, 'deploy', 'k8s');
/** The namespace the shipped manifests use. */
export const DEPLOY_NAMESPACE = 'ztwim';

/** A Kubernetes object as the manifests hold it (read loosely; the tests set a few fields). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** Every document of deploy/k8s/<file>. */
export function manifest(file: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY_DIR, file), 'utf8'));
  return docs
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`deploy/k8s/${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as K8sObject;
    })
    .filter((o) => o !== null);
}

/** The one object of `kind` named `name` in deploy/k8s/<file>. */
export function manifestObject(file: string, kind: string, name?: string): K8sObject {
  const found = manifest(file).filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`deploy/k8s/${file}: expected one ${kind}${name !== undefined ? ` ${name}` : ''}, found ${found.length}`);
  return found[0] as K8sObject;
}

/**
 * The objects moved to namespace `ns`: namespaced objects get it, RBAC subjects in the shipped
 * namespace point at it, and cluster-scoped RBAC objects get `-<ns>` names (the cluster is shared).
 */
export function inNamespace(objects: readonly K8sObject[], ns: string): K8sObject[] {
  return objects.map((o) => {
    const copy = structuredClone(o);
    if (copy.kind === 'ClusterRole' || copy.kind === 'ClusterRoleBinding') {
      copy.metadata.name = `${copy.metadata.name}-${ns}`;
    } else if (copy.kind !== 'Namespace') {
      copy.metadata.namespace = ns;
    }
    if (copy.kind === 'ClusterRoleBinding' || copy.kind === 'RoleBinding') {
      const subjects = copy['subjects'] as Array<{ kind: string; namespace?: string }>;
      for (const s of subjects) if (s.kind === 'ServiceAccount' && s.namespace === DEPLOY_NAMESPACE) s.namespace = ns;
      const ref = copy['roleRef'] as { kind: string; name: string };
      if (ref.kind === 'ClusterRole') ref.name = `${ref.name}-${ns}`;
    }
    return copy;
  });
}

/**
 * Sets `key = value` in a SPIRE-format (HCL) config: the key must appear exactly once (so a
 * config that drifts from what the test expects fails here, naming the key).
 */
export function setConfValue(conf: string, key: string, value: string | number | readonly string[]): string {
  const re = new RegExp(`^(\\s*${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*=\\s*).*$`, 'gm');
  const hits = conf.match(re)?.length ?? 0;
  if (hits !== 1) throw new Error(`config: expected one "${key} = ..." line, found ${hits}`);
  return conf.replace(re, `$1${typeof value === 'number' ? String(value) : JSON.stringify(value)}`);
}

/** Applies setConfValue for every entry. */
export function setConfValues(conf: string, values: Record<string, string | number | readonly string[]>): string {
  return Object.entries(values).reduce((c, [k, v]) => setConfValue(c, k, v), conf);
}
