// An in-memory OperatorKube for the reconcilers' unit tests: objects by apiVersion/kind/ns/name,
// apply merges the applied fields over the stored object (what SSA does for one manager), uid and
// generation (bumped when spec changes) assigned as the apiserver would, every write counted.
import type { KubeObj, OperatorKube, ResourceKind } from './kube-port.ts';

type Mutable = { -readonly [K in keyof KubeObj]: KubeObj[K] } & Record<string, unknown>;

export class FakeKube implements OperatorKube {
  readonly objects = new Map<string, KubeObj>();
  readonly writes: string[] = [];
  /** Kinds the apiserver does not serve (resourceFor answers undefined). */
  readonly unserved = new Set<string>();
  /** Makes the next writes of `kind` fail with this error. */
  failWrites = new Map<string, Error>();
  private uid = 0;
  private rv = 0;

  private static key(apiVersion: string, kind: string, name: string, namespace?: string): string {
    return `${apiVersion}/${kind}/${namespace ?? ''}/${name}`;
  }

  private keyOf(ref: ResourceKind, name: string, namespace?: string): string {
    return FakeKube.key(ref.apiVersion, ref.kind ?? ref.resource, name, ref.namespaced ? namespace : undefined);
  }

  /** Puts an object as a user would (kubectl apply/create). */
  put(o: KubeObj): KubeObj {
    const k = FakeKube.key(o.apiVersion ?? '', o.kind ?? '', o.metadata.name ?? '', o.metadata.namespace);
    const prev = this.objects.get(k);
    const stored: KubeObj = {
      ...o,
      metadata: { ...o.metadata, uid: prev?.metadata.uid ?? `uid-${++this.uid}`, generation: this.nextGen(prev, o), resourceVersion: String(++this.rv) },
    };
    this.objects.set(k, stored);
    return stored;
  }

  find(apiVersion: string, kind: string, name: string, namespace?: string): KubeObj | undefined {
    return this.objects.get(FakeKube.key(apiVersion, kind, name, namespace));
  }

  remove(apiVersion: string, kind: string, name: string, namespace?: string): void {
    this.objects.delete(FakeKube.key(apiVersion, kind, name, namespace));
  }

  private nextGen(prev: KubeObj | undefined, next: KubeObj): number {
    if (prev === undefined) return 1;
    return JSON.stringify(prev['spec']) === JSON.stringify(next['spec']) ? (prev.metadata.generation ?? 1) : (prev.metadata.generation ?? 1) + 1;
  }

  private checkFail(kind: string | undefined): void {
    const e = this.failWrites.get(kind ?? '');
    if (e !== undefined) throw e;
  }

  async get(ref: ResourceKind, name: string, namespace?: string): Promise<KubeObj | undefined> {
    const o = this.objects.get(this.keyOf(ref, name, namespace));
    return o === undefined ? undefined : structuredClone(o);
  }

  async apply(ref: ResourceKind, object: KubeObj): Promise<KubeObj> {
    this.checkFail(object.kind);
    this.writes.push(`apply ${object.kind ?? ''} ${object.metadata.name ?? ''}`);
    const prev = this.objects.get(this.keyOf(ref, object.metadata.name ?? '', object.metadata.namespace));
    const merged = merge(prev ?? {}, object) as KubeObj;
    return this.put(merged);
  }

  async patch(ref: ResourceKind, name: string, patch: unknown, namespace?: string): Promise<KubeObj> {
    this.writes.push(`patch ${ref.kind ?? ref.resource} ${name}`);
    const prev = this.objects.get(this.keyOf(ref, name, namespace));
    if (prev === undefined) throw new Error(`${ref.resource} "${name}" not found`);
    return this.put(merge(prev, patch) as KubeObj);
  }

  async patchStatus(ref: ResourceKind, name: string, patch: unknown): Promise<KubeObj> {
    this.writes.push(`status ${ref.kind ?? ref.resource} ${name}`);
    const prev = this.objects.get(this.keyOf(ref, name));
    if (prev === undefined) throw new Error(`${ref.resource} "${name}" not found`);
    const status = (patch as { status: unknown }).status;
    const next = { ...prev, status: merge((prev as Mutable)['status'] ?? {}, status) } as KubeObj;
    this.objects.set(this.keyOf(ref, name), { ...next, metadata: { ...next.metadata, resourceVersion: String(++this.rv) } });
    return next;
  }

  async delete(ref: ResourceKind, name: string, namespace?: string): Promise<void> {
    this.writes.push(`delete ${ref.kind ?? ref.resource} ${name}`);
    this.objects.delete(this.keyOf(ref, name, namespace));
  }

  async resourceFor(apiVersion: string, kind: string): Promise<ResourceKind | undefined> {
    if (this.unserved.has(kind)) return undefined;
    const clusterScoped = new Set([
      'ClusterRole',
      'ClusterRoleBinding',
      'CSIDriver',
      'ValidatingWebhookConfiguration',
      'ClusterSPIFFEID',
      'Namespace',
      'SecurityContextConstraints',
    ]);
    return { apiVersion, kind, resource: `${kind.toLowerCase()}s`, namespaced: !clusterScoped.has(kind) && !apiVersion.startsWith('operator.openshift.io') };
  }
}

/** JSON merge patch (RFC 7386): objects merge, everything else replaces, null deletes. */
function merge(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v);
  }
  return out;
}
