// What a pass reads of the cluster: namespaces, pods by namespace, nodes by name and the
// Endpoints that target a pod. The registrar serves it from its informers' stores (no request
// per pass); tests hand a pass a plain in-memory view.

/** A Kubernetes object as JSON (the parts a pass reads). */
export interface KubeJson {
  readonly metadata?: Readonly<Record<string, unknown>> & {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly creationTimestamp?: string;
    readonly deletionTimestamp?: string;
  };
  readonly spec?: Readonly<Record<string, unknown>>;
  readonly [field: string]: unknown;
}

export interface ClusterView {
  namespaces(): Iterable<KubeJson>;
  podsInNamespace(namespace: string): Iterable<KubeJson>;
  /** The pod `namespace/name` (incremental passes look their pods up by name). */
  pod(namespace: string, name: string): KubeJson | undefined;
  node(name: string): KubeJson | undefined;
  /** Endpoints objects in the pod's namespace with an address whose targetRef is the pod. */
  endpointsOfPod(namespace: string, podUid: string): Iterable<KubeJson>;
}

/** The pod UIDs an Endpoints object's ready addresses target (SPIRE's endpoint UID index). */
export function podUidsOfEndpoints(endpoints: KubeJson): string[] {
  const out: string[] = [];
  const subsets = endpoints['subsets'];
  if (!Array.isArray(subsets)) return out;
  for (const subset of subsets as unknown[]) {
    const addresses = (subset as { addresses?: unknown } | null)?.addresses;
    if (!Array.isArray(addresses)) continue;
    for (const a of addresses as unknown[]) {
      const ref = (a as { targetRef?: { kind?: unknown; uid?: unknown } } | null)?.targetRef;
      if (ref?.kind === 'Pod' && typeof ref.uid === 'string') out.push(ref.uid);
    }
  }
  return out;
}

/** A ClusterView over plain arrays (tests, static manifests). */
export function arrayClusterView(objects: {
  namespaces: readonly KubeJson[];
  pods: readonly KubeJson[];
  nodes: readonly KubeJson[];
  endpoints?: readonly KubeJson[];
}): ClusterView {
  return {
    namespaces: () => objects.namespaces,
    podsInNamespace: (ns) => objects.pods.filter((p) => p.metadata?.namespace === ns),
    pod: (ns, name) => objects.pods.find((p) => p.metadata?.namespace === ns && p.metadata?.name === name),
    node: (name) => objects.nodes.find((n) => n.metadata?.name === name),
    endpointsOfPod: (ns, uid) => (objects.endpoints ?? []).filter((e) => e.metadata?.namespace === ns && podUidsOfEndpoints(e).includes(uid)),
  };
}
