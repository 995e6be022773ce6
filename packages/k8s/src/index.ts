export { createConfigMapClient, createKubeClient, SERVICE_ACCOUNT_DIR } from './client-node.ts';
export { kubeClientSource } from './kube-client.ts';
export type { ConfigMapClient, KubeClient, KubeClientSource, KubeConfigMap, KubeNode, KubePod, TokenReviewStatus } from './kube-client.ts';
