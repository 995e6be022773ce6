export { formatSelector } from './attestation/workload/workload-attestor.ts';
export type { Selector, WorkloadAttestor } from './attestation/workload/workload-attestor.ts';
export { UnixWorkloadAttestor, UNIX_SELECTOR_TYPE, sha256OfFile } from './attestation/workload/unix.ts';
// The k8s workload attestor (and the kubelet client under it) is on its own entry point,
// `@ztwim/agent/k8s-workload-attestor`, so importing the agent does not load it; startAgent
// imports it only when the config names it.
export type { K8sAttestorConfig, K8sAttestorDeps } from './attestation/workload/k8s.ts';
export type { UnixAttestorConfig } from './attestation/workload/unix.ts';
export { PeerTracker, WORKLOAD_ATTESTATION_FAILED } from './attestation/workload/peer-tracker.ts';
export type { PeerTrackerConfig, PeerSnapshot, TrackedPeer } from './attestation/workload/peer-tracker.ts';
export { startAgent, isAgentNotAttested, storedAgentId, deleteAgentData } from './agent.ts';
export type { AgentDeps, RunningAgent } from './agent.ts';
export { loadAgentConfig, buildAgentConfig, serverTargets, AGENT_DEFAULTS } from './config/agent-config.ts';
export type { AgentConfig, AgentConfigOverrides, NodeAttestorConfig, ServerTarget } from './config/agent-config.ts';
export type { ResolveHost } from './client/server-pool.ts';
export { CacheManager, entryMatches, rotationTime } from './manager/sync.ts';
export type { CachedX509Svid, CacheManagerOptions } from './manager/sync.ts';
