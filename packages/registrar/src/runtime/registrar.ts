// `ztwim registrar` at run time: informers on namespaces, nodes, pods, Endpoints and the
// spire.spiffe.io CRs feed one EntryReconciler through a PassRunner (events trigger coalesced
// passes: pod events a pod pass over those pods, the others a full pass; the idle tick runs a full
// one every gcInterval). With leaderElection only the Lease holder
// runs passes and writes status; the others keep their informers warm and take over at once.
// With staticManifestPath there is no Kubernetes at all: CRs come from files, no status.
import { setMaxListeners } from 'node:events';
import { randomUuid, type Clock, type Logger, type Random, unavailable } from '@ztwim/core';
import { createResourceClient, Informer, kubeClientSource, LeaderElector, type KubeObject, type ResourceClient } from '@ztwim/k8s';
import type { ManagerConfig } from '../config/manager-config.ts';
import { isNamespaceIgnored } from '../config/manager-config.ts';
import { parseTemplate } from '../template/index.ts';
import type { ClusterView, KubeJson } from '../reconcile/cluster-view.ts';
import { arrayClusterView } from '../reconcile/cluster-view.ts';
import { EntryReconciler, type CrSource, type PassSummary, type PodRef, type StatusWriter } from '../reconcile/entry-pass.ts';
import { PassRunner } from '../reconcile/pass-runner.ts';
import type { EntryClient } from '../spire/entry.ts';
import { clusterInformers, informerClusterView, type ClusterInformers } from './kube-cluster-view.ts';
import { CLUSTER_FEDERATED_TRUST_DOMAINS, CLUSTER_SPIFFE_IDS, CLUSTER_STATIC_ENTRIES } from './resources.ts';
import { readStaticManifests } from './static-manifests.ts';

export interface RegistrarDeps {
  readonly config: ManagerConfig;
  readonly entries: EntryClient;
  /** The Kubernetes API; undefined with staticManifestPath. */
  readonly kube: ResourceClient | undefined;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  /** Lease holder identity (default: hostname_uuid, as controller-runtime). */
  readonly identity?: string;
  /** Namespace of the Lease when the config does not name one. */
  readonly podNamespace?: string;
  /** Called after every pass (tests, metrics). */
  readonly onPass?: (summary: PassSummary | undefined) => void;
}

export interface Registrar {
  /** Resolves when informers are synced (and, with leader election, this replica leads). */
  readonly ready: Promise<void>;
  isReady(): boolean;
  isLeader(): boolean;
  /** Asks for a pass now (coalesced). */
  trigger(): void;
  /** Resolves when no pass is running or pending. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const FIELD_MANAGER = 'ztwim-registrar';

/** Pod changes that can change what a pass declares (templates see PodMeta and PodSpec only). */
function podChanged(a: KubeObject, b: KubeObject): boolean {
  if (a.metadata.resourceVersion === b.metadata.resourceVersion) return false; // a resync
  const sa = a['spec'] as Record<string, unknown> | undefined;
  const sb = b['spec'] as Record<string, unknown> | undefined;
  return (
    JSON.stringify(a.metadata.labels ?? {}) !== JSON.stringify(b.metadata.labels ?? {}) ||
    JSON.stringify(a.metadata.annotations ?? {}) !== JSON.stringify(b.metadata.annotations ?? {}) ||
    a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp ||
    sa?.['nodeName'] !== sb?.['nodeName'] ||
    JSON.stringify(sa) !== JSON.stringify(sb)
  );
}

function statusWriter(kube: ResourceClient): StatusWriter {
  return {
    async clusterSPIFFEID(name, stats) {
      await kube.patchStatus(CLUSTER_SPIFFE_IDS, name, { status: { stats } }, 'merge', { fieldManager: FIELD_MANAGER });
    },
    async clusterStaticEntry(name, status) {
      await kube.patchStatus(CLUSTER_STATIC_ENTRIES, name, { status }, 'merge', { fieldManager: FIELD_MANAGER });
    },
  };
}

export function startRegistrar(d: RegistrarDeps): Registrar {
  const c = d.config;
  const abort = new AbortController();
  // Every informer's run and waitForSync listen on it (7 informers: 14 listeners).
  setMaxListeners(64, abort.signal);
  const log = d.log;
  const parentIDTemplate = c.parentIDTemplate === '' ? undefined : parseTemplate(c.parentIDTemplate);

  let view: ClusterView;
  let crs: CrSource;
  let informers: ClusterInformers | undefined;
  const crInformers: Informer[] = [];
  let spiffeIdInformer: Informer | undefined;
  let staticInformer: Informer | undefined;
  if (d.kube === undefined) {
    view = arrayClusterView({ namespaces: [], pods: [], nodes: [] });
    crs = {
      clusterSPIFFEIDs: () => [],
      clusterStaticEntries: () => readStaticManifests(c.staticManifestPath).clusterStaticEntries,
    };
  } else {
    const base = { client: d.kube, clock: d.clock, random: d.random, logger: log };
    informers = clusterInformers(base);
    view = informerClusterView(informers);
    if (c.reconcile.clusterSPIFFEIDs) crInformers.push((spiffeIdInformer = new Informer({ ...base, resource: CLUSTER_SPIFFE_IDS })));
    if (c.reconcile.clusterStaticEntries) crInformers.push((staticInformer = new Informer({ ...base, resource: CLUSTER_STATIC_ENTRIES })));
    if (c.reconcile.clusterFederatedTrustDomains) {
      const ftd = new Informer({ ...base, resource: CLUSTER_FEDERATED_TRUST_DOMAINS });
      crInformers.push(ftd);
      // Federation relationships need the TrustDomain API (not in ztwim server yet): say so once
      // per object version instead of failing.
      const seen = new Set<string>();
      const unimplemented = (o: KubeObject): void => {
        const key = `${o.metadata.uid ?? ''}/${o.metadata.resourceVersion ?? ''}`;
        if (seen.has(key)) return;
        seen.add(key);
        log.warn(
          { cluster_federated_trust_domain: o.metadata.name, reason: 'Unimplemented' },
          'Federation relationships are not reconciled yet: ClusterFederatedTrustDomain left as is',
        );
      };
      ftd.addHandlers({ onAdd: unimplemented, onUpdate: (_a, b) => unimplemented(b) });
    }
    crs = {
      clusterSPIFFEIDs: () => (spiffeIdInformer?.store.list() ?? []) as KubeJson[],
      clusterStaticEntries: () => (staticInformer?.store.list() ?? []) as KubeJson[],
    };
  }

  const reconciler = new EntryReconciler({
    trustDomain: c.trustDomain,
    clusterName: c.clusterName,
    clusterDomain: c.clusterDomain,
    ignoreNamespaces: c.ignoreNamespaces,
    parentIDTemplate,
    entries: d.entries,
    view,
    crs,
    status: d.kube === undefined ? undefined : statusWriter(d.kube),
    className: c.className,
    watchClassless: c.watchClassless,
    reconcileClusterSPIFFEIDs: c.reconcile.clusterSPIFFEIDs && d.kube !== undefined,
    reconcileClusterStaticEntries: c.reconcile.clusterStaticEntries,
    entryIDPrefix: c.entryIDPrefix,
    entryIDPrefixCleanup: c.entryIDPrefixCleanup,
    newId: () => randomUuid(d.random),
    log,
  });

  let runner: PassRunner<PodRef> | undefined;
  const newRunner = (): PassRunner<PodRef> =>
    new PassRunner<PodRef>({
      clock: d.clock,
      gcIntervalMs: c.gcIntervalMs,
      pass: async (signal) => {
        const started = d.clock.nowMs();
        const s = await reconciler.pass(signal);
        if (s !== undefined) log.debug({ ...s, duration_ms: d.clock.nowMs() - started }, 'Reconciled entries');
        d.onPass?.(s);
      },
      // Pod events: only those pods' entries (docs/registrar.md, "Pod passes").
      podPass: async (pods, signal) => {
        const started = d.clock.nowMs();
        const r = await reconciler.podPass(pods, signal);
        if (r.summary !== undefined) log.debug({ ...r.summary, pods: pods.length, duration_ms: d.clock.nowMs() - started }, 'Reconciled pod entries');
        if (!r.needFull) d.onPass?.(r.summary);
        return r.needFull;
      },
      onError: (e) => log.error({ err: e instanceof Error ? e.message : String(e) }, 'Reconcile pass failed'),
    });
  const trigger = (): void => runner?.trigger();
  const triggerPod = (o: KubeObject): void => {
    const uid = o.metadata.uid ?? '';
    if (uid === '') return trigger();
    runner?.triggerPod(uid, { namespace: o.metadata.namespace ?? '', name: o.metadata.name ?? '', uid });
  };

  if (informers !== undefined) {
    const notIgnored = (o: KubeObject): boolean => !isNamespaceIgnored(c.ignoreNamespaces, o.metadata.namespace ?? '');
    informers.pods.addHandlers({
      onAdd: (o) => notIgnored(o) && triggerPod(o),
      onUpdate: (a, b) => notIgnored(b) && podChanged(a, b) && triggerPod(b),
      onDelete: (o) => notIgnored(o) && triggerPod(o),
    });
    informers.endpoints.addHandlers({
      onAdd: (o) => notIgnored(o) && trigger(),
      onUpdate: (a, b) => notIgnored(b) && a.metadata.resourceVersion !== b.metadata.resourceVersion && trigger(),
      onDelete: (o) => notIgnored(o) && trigger(),
    });
    informers.namespaces.addHandlers({
      onUpdate: (a, b) => JSON.stringify(a.metadata.labels ?? {}) !== JSON.stringify(b.metadata.labels ?? {}) && trigger(),
    });
    for (const inf of [spiffeIdInformer, staticInformer]) {
      inf?.addHandlers({
        onAdd: () => trigger(),
        // Our own status writes change the resourceVersion too; only spec/meta changes matter.
        onUpdate: (a, b) =>
          (JSON.stringify(a['spec']) !== JSON.stringify(b['spec']) || a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp) && trigger(),
        onDelete: () => trigger(),
      });
    }
  }

  const all: Informer[] = informers === undefined ? [] : [informers.namespaces, informers.nodes, informers.pods, informers.endpoints, ...crInformers];
  const runs = all.map((i) =>
    i.run(abort.signal).catch((e: unknown) => log.error({ resource: i.stats, err: e instanceof Error ? e.message : String(e) }, 'Informer stopped')),
  );

  let synced = false;
  let leading = false;
  const startLeading = async (): Promise<void> => {
    leading = true;
    runner = newRunner();
    runner.start();
  };
  const stopLeading = async (): Promise<void> => {
    leading = false;
    const r = runner;
    runner = undefined;
    await r?.stop();
  };

  let elector: LeaderElector | undefined;
  let electorRun: Promise<void> | undefined;
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (resolveReady = r));
  void (async () => {
    try {
      await Promise.all(all.map((i) => i.waitForSync(abort.signal)));
    } catch {
      return; // closed before sync
    }
    synced = true;
    log.info({ informers: all.length }, 'Caches synced');
    if (c.leaderElection.leaderElect && d.kube !== undefined) {
      const le = c.leaderElection;
      elector = new LeaderElector({
        client: d.kube,
        namespace: le.resourceNamespace || d.podNamespace || 'default',
        name: le.resourceName,
        identity: d.identity ?? `${process.env['HOSTNAME'] ?? 'registrar'}_${randomUuid(d.random)}`,
        leaseDurationMs: le.leaseDurationMs,
        renewDeadlineMs: le.renewDeadlineMs,
        retryPeriodMs: le.retryPeriodMs,
        clock: d.clock,
        random: d.random,
        logger: log,
        onStartedLeading: () => {
          log.info({ lease: le.resourceName }, 'Became leader');
          void startLeading();
          resolveReady();
        },
        onStoppedLeading: () => {
          log.info({ lease: le.resourceName }, 'Stopped leading');
          void stopLeading();
        },
      });
      // Renewals failing for renewDeadline (the API server away, say) end the leadership: passes
      // stop, as in the controller manager, whose process then exits for the kubelet to restart
      // it. Here the same process campaigns again, keeping its informer caches warm.
      const el = elector;
      electorRun = (async () => {
        while (!abort.signal.aborted) {
          await el.run(abort.signal);
          try {
            await d.clock.sleep(le.retryPeriodMs, abort.signal);
          } catch {
            return;
          }
        }
      })();
    } else {
      await startLeading();
      resolveReady();
    }
  })();

  return {
    ready,
    isReady: () => synced,
    isLeader: () => leading,
    trigger,
    idle: async () => {
      await runner?.idle();
    },
    async close() {
      await stopLeading();
      abort.abort(unavailable('registrar stopping'));
      await electorRun?.catch(() => undefined);
      await Promise.all(runs);
    },
  };
}

/** The Kubernetes API client: a kubeconfig file, or the pod's in-cluster config when ''. */
export async function connectKube(kubeconfig: string): Promise<ResourceClient> {
  return await createResourceClient(kubeClientSource(kubeconfig));
}
