/**
 * The small view of the Kubernetes API that ztwim's k8s plugins depend on. Attestors take a
 * KubeClient, so tests hand them a fake and production hands them the one built on
 * @kubernetes/client-node (client-node.ts). Later users (registrar, operator) add their calls here.
 * The objects are ztwim's own narrow shapes, not the library's, so nothing outside this package
 * depends on the library's types.
 */
export interface KubeClient {
  /** Names the cluster in messages: `cluster "<name>" (<server URL>)`. */
  readonly description: string;
  /** POST authentication.k8s.io/v1 TokenReview with the token and audiences; the review's status. */
  reviewToken(token: string, audiences: readonly string[]): Promise<TokenReviewStatus>;
  /** GET /api/v1/namespaces/<ns>/pods/<name>. */
  getPod(namespace: string, name: string): Promise<KubePod>;
  /** GET /api/v1/nodes/<name>. */
  getNode(name: string): Promise<KubeNode>;
}

export interface TokenReviewStatus {
  readonly authenticated: boolean;
  /** The apiserver's reason when the token did not authenticate (may be empty). */
  readonly error: string;
  readonly audiences: readonly string[];
  readonly user: {
    /** `system:serviceaccount:<ns>:<sa>` for a service-account token. */
    readonly username: string;
    readonly uid: string;
    readonly groups: readonly string[];
    /** e.g. `authentication.kubernetes.io/pod-name` → [name] for a pod-bound token. */
    readonly extra: Readonly<Record<string, readonly string[]>>;
  };
}

export interface KubePod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** spec.nodeName ('' until scheduled). */
  readonly nodeName: string;
  /** status.hostIP ('' until known). */
  readonly hostIp: string;
  readonly serviceAccountName: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface KubeNode {
  readonly name: string;
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Where a client finds its cluster: a kubeconfig file, or the pod's in-cluster config. */
export type KubeClientSource =
  | { readonly kind: 'kubeconfig'; readonly path: string }
  | {
      readonly kind: 'in-cluster';
      /** Prefix for /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt} (tests). */
      readonly pathPrefix?: string;
      /** KUBERNETES_SERVICE_HOST/PORT come from here (default process.env). */
      readonly env?: Readonly<Record<string, string | undefined>>;
    };

/** SPIRE's rule: an empty kube_config_file means the in-cluster config. */
export function kubeClientSource(kubeConfigFile: string): KubeClientSource {
  return kubeConfigFile === '' ? { kind: 'in-cluster' } : { kind: 'kubeconfig', path: kubeConfigFile };
}
