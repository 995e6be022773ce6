// The k8sbundle notifier's settings, apart from the notifier (k8s-bundle.ts) so that reading a
// config does not load the notifier and its Kubernetes code.
export interface K8sBundleNotifierConfig {
  readonly namespace: string;
  readonly configMap: string;
  readonly configMapKey: string;
  /** '' for the in-cluster config (SPIRE's rule for an unset kube_config_file_path). */
  readonly kubeConfigFilePath: string;
}

/** SPIRE's defaults (pkg/server/plugin/notifier/k8sbundle). */
export const K8S_BUNDLE_DEFAULTS = { namespace: 'spire', configMap: 'spire-bundle', configMapKey: 'bundle.crt' } as const;
