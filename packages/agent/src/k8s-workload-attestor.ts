// `@ztwim/agent/k8s-workload-attestor`: the Kubernetes workload attestor, apart from the agent's
// main entry point so that the agent (and every `ztwim` command importing it) loads the kubelet
// client only where a config names the k8s WorkloadAttestor (agent.ts imports it then).
export { K8sWorkloadAttestor, K8S_SELECTOR_TYPE } from './attestation/workload/k8s.ts';
export type { K8sAttestorConfig, K8sAttestorDeps } from './attestation/workload/k8s.ts';
export { ContainerLocator } from './attestation/workload/k8s-container-locator.ts';
