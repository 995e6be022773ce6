// What the controllers need from the Kubernetes API: a narrow port over @ztwim/k8s's
// ResourceClient (resource-client-port.ts adapts it), so the reconcilers are tested against an
// in-memory API and run against the real one unchanged.

import type { OwnerReference } from '@ztwim/k8s';

/** Any object: apiVersion/kind/metadata and the rest. */
export interface KubeObj {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly generation?: number;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly ownerReferences?: ReadonlyArray<OwnerRef>;
    readonly deletionTimestamp?: string;
    readonly finalizers?: readonly string[];
  };
  readonly [field: string]: unknown;
}

/** apimachinery's OwnerReference. */
export type OwnerRef = OwnerReference;

/** Which collection: apiVersion, plural resource, namespaced or not. */
export interface ResourceKind {
  readonly apiVersion: string;
  readonly resource: string;
  readonly namespaced: boolean;
  readonly kind?: string;
}

export interface OperatorKube {
  /** The object, or undefined when it does not exist. */
  get(ref: ResourceKind, name: string, namespace?: string): Promise<KubeObj | undefined>;
  /** Server-side apply with the operator's field manager, forcing conflicts (the operator owns these fields). */
  apply(ref: ResourceKind, object: KubeObj): Promise<KubeObj>;
  /** JSON merge patch of the object (metadata: owner references, finalizers). */
  patch(ref: ResourceKind, name: string, patch: unknown, namespace?: string): Promise<KubeObj>;
  /** JSON merge patch of the status subresource. */
  patchStatus(ref: ResourceKind, name: string, patch: unknown): Promise<KubeObj>;
  /** Deletes (background propagation); a missing object is not an error. */
  delete(ref: ResourceKind, name: string, namespace?: string): Promise<void>;
  /** The collection serving apiVersion/kind (discovery), undefined when the apiserver has none. */
  resourceFor(apiVersion: string, kind: string): Promise<ResourceKind | undefined>;
}

/** The field manager of every operator write. */
export const FIELD_MANAGER = 'ztwim-operator';
