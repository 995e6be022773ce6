export { createKubeClient, SERVICE_ACCOUNT_DIR } from './client-node.ts';
export { kubeClientSource } from './kube-client.ts';
export type { KubeClient, KubeClientSource, KubeNode, KubePod, TokenReviewStatus } from './kube-client.ts';
