// The `k8s:` selectors of a pod and of the workload's container, as SPIRE v1.13's k8s workload
// attestor makes them from the kubelet's `/pods` list (pkg/agent/plugin/workloadattestor/k8s).

/** The part of a kubelet `/pods` item the attestor reads (core/v1 Pod, JSON field names). */
export interface KubeletPod {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly ownerReferences?: ReadonlyArray<{ readonly kind?: string; readonly name?: string; readonly uid?: string }>;
  };
  readonly spec?: { readonly serviceAccountName?: string; readonly nodeName?: string };
  readonly status?: {
    readonly containerStatuses?: readonly KubeletContainerStatus[];
    readonly initContainerStatuses?: readonly KubeletContainerStatus[];
  };
}

export interface KubeletContainerStatus {
  readonly name?: string;
  readonly image?: string;
  readonly imageID?: string;
  /** `<runtime>://<id>`, e.g. `containerd://4a3f…`; empty until the container has started. */
  readonly containerID?: string;
}

const RUNTIME_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/;

/** The `<id>` of `<runtime>://<id>` (the URL host, as SPIRE compares it); undefined if malformed. */
export function containerIdOf(statusContainerId: string): string | undefined {
  return RUNTIME_URL.exec(statusContainerId)?.[1];
}

/** The status of the container with this ID among the pod's containers, then its init containers. */
export function findContainerStatus(pod: KubeletPod, containerId: string): KubeletContainerStatus | undefined {
  for (const list of [pod.status?.containerStatuses, pod.status?.initContainerStatuses]) {
    for (const cs of list ?? []) {
      if (cs.containerID === undefined || cs.containerID === '') continue;
      if (containerIdOf(cs.containerID) === containerId) return cs;
    }
  }
  return undefined;
}

/**
 * Image and image ID of each status, without repeats: an entry can name the image by tag
 * (`docker.io/envoyproxy/envoy:v1.16.0`) or by digest (imageID), so both are selectors. An empty
 * image ID (container not started) is kept, as SPIRE keeps it.
 */
function imageIdentifiers(statuses: readonly KubeletContainerStatus[]): string[] {
  const out = new Set<string>();
  for (const s of statuses) {
    out.add(s.imageID ?? '');
    out.add(s.image ?? '');
  }
  return [...out];
}

/** `sa`, `ns`, `node-name`, `pod-uid`, `pod-name`, image counts, images, labels and owners. */
export function podSelectorValues(pod: KubeletPod): string[] {
  const md = pod.metadata ?? {};
  const containers = pod.status?.containerStatuses ?? [];
  const inits = pod.status?.initContainerStatuses ?? [];
  const out = [
    `sa:${pod.spec?.serviceAccountName ?? ''}`,
    `ns:${md.namespace ?? ''}`,
    `node-name:${pod.spec?.nodeName ?? ''}`,
    `pod-uid:${md.uid ?? ''}`,
    `pod-name:${md.name ?? ''}`,
    `pod-image-count:${containers.length}`,
    `pod-init-image-count:${inits.length}`,
  ];
  for (const image of imageIdentifiers(containers)) out.push(`pod-image:${image}`);
  for (const image of imageIdentifiers(inits)) out.push(`pod-init-image:${image}`);
  for (const [k, v] of Object.entries(md.labels ?? {})) out.push(`pod-label:${k}:${v}`);
  for (const o of md.ownerReferences ?? []) {
    out.push(`pod-owner:${o.kind ?? ''}:${o.name ?? ''}`);
    out.push(`pod-owner-uid:${o.kind ?? ''}:${o.uid ?? ''}`);
  }
  return out;
}

/** `container-name` and `container-image` (image and image ID) of the workload's container. */
export function containerSelectorValues(status: KubeletContainerStatus): string[] {
  return [`container-name:${status.name ?? ''}`, ...imageIdentifiers([status]).map((i) => `container-image:${i}`)];
}
