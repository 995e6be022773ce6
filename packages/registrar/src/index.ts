// @ztwim/registrar: the workload registrar (spire-controller-manager's job).
export { parseManagerConfig, loadManagerConfig, isNamespaceIgnored, DEFAULT_IGNORE_NAMESPACES, DEFAULT_GC_INTERVAL_MS, DEFAULT_SPIRE_SERVER_SOCKET_PATH } from './config/manager-config.ts';
export type { ManagerConfig, ReconcileToggles, LeaderElectionConfig } from './config/manager-config.ts';
export { detectClusterDomain, clusterDomainFromResolvConf } from './config/cluster-domain.ts';
export { dialEntryClient, entryToProto, entryFromProto } from './spire/entry-client.ts';
export type { EntryClient, RegEntry, Selector, BatchStatus } from './spire/entry.ts';
export { planEntries, entryKey, partitionByPrefix, isJoinTokenEntry, outdatedFields } from './reconcile/plan.ts';
export type { Plan, Declared, Declarer } from './reconcile/plan.ts';
export { PassRunner } from './reconcile/pass-runner.ts';
export type { PassRunnerOptions } from './reconcile/pass-runner.ts';
