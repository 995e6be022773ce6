// The controller manager of `ztwim operator`: informers on the five CRs and on the objects the
// operator generates (by the managed-by label), one work queue keyed by kind, the reconcilers.
// What triggers what (digest §2.1):
//   - ZTWIM added/changed/deleted           → every kind;
//   - an operand CR's spec, annotations, owners or deletion changed → that kind and ZTWIM;
//   - an operand CR's status changed        → ZTWIM (aggregation), and the OIDC provider when
//                                              the agent's or the CSI driver's Ready changed;
//   - a generated object changed or deleted → the operand of its component label (the bundle
//                                              ConfigMap also wakes the agent).
//   - an optional API group (route.openshift.io, security.openshift.io, monitoring.coreos.com)
//     became served or stopped being served (served-apis.ts, re-checked on a timer) → every
//     operand kind, and the informers of Routes, SCCs and ServiceMonitors follow.
// A pass that changed nothing writes nothing, so the informers' periodic resync costs reads only.
import type { Clock, Logger, Random } from '@ztwim/core';
import { Informer, type KubeObject, type ResourceClient } from '@ztwim/k8s';
import { OPERAND_KINDS, type OperandKind } from './aggregate.ts';
import type { OperatorKube } from './kube-port.ts';
import { OperandReconciler, type RenderOperand } from './operand-reconciler.ts';
import { COMPONENT_LABEL, CR_RESOURCES, MANAGED_BY, MANAGED_BY_LABEL, OWNED_KINDS, operandOfComponent, type CrKind } from './resources.ts';
import { operatorKube } from './resource-client-port.ts';
import { DEFAULT_DISCOVERY_INTERVAL_MS, OPTIONAL_APIS, type ServedApis } from './served-apis.ts';
import { WorkQueue } from './work-queue.ts';
import { ZtwimReconciler } from './ztwim-reconciler.ts';

export interface OperatorManagerOptions {
  readonly client: ResourceClient;
  /** Operand namespace (OPERATOR_NAMESPACE). */
  readonly namespace: string;
  readonly render: RenderOperand;
  readonly createOnlyEnv: boolean;
  readonly clock: Clock;
  readonly random?: Random;
  readonly log: Logger;
  /** Informer resync (default 10 min): a pass per kind that finds nothing to do. */
  readonly resyncMs?: number;
  /** Wrap the API port (tests count calls). */
  readonly wrapKube?: (k: OperatorKube) => OperatorKube;
  /** Called at the start of every reconcile pass (the per-minute stats count them). */
  readonly onPass?: (key: string) => void;
  /** Whether an error is worth a retry with backoff (API trouble) or not. */
  readonly retryable?: (e: unknown) => boolean;
  /**
   * The optional API groups, already refreshed once; re-checked every discoveryIntervalMs
   * (default 30 s). Without it those kinds are never watched.
   */
  readonly servedApis?: ServedApis;
  readonly discoveryIntervalMs?: number;
}

const ZTWIM: CrKind = 'ZeroTrustWorkloadIdentityManager';

export class OperatorManager {
  readonly operands: OperandReconciler;
  readonly ztwim: ZtwimReconciler;
  readonly queue: WorkQueue;
  private readonly informers: Informer[] = [];
  /** Informers of the optional kinds (Route, SCC, ServiceMonitor) by apiVersion/kind, each stoppable. */
  private readonly optional = new Map<string, { readonly abort: AbortController; readonly done: Promise<void> }>();
  private readonly o: OperatorManagerOptions;

  constructor(o: OperatorManagerOptions) {
    this.o = o;
    const base = operatorKube(o.client);
    const kube = o.wrapKube === undefined ? base : o.wrapKube(base);
    const log = o.log;
    this.operands = new OperandReconciler({
      kube,
      render: o.render,
      clock: o.clock,
      log: log.child({ controller: 'operand' }),
      namespace: o.namespace,
      createOnlyEnv: o.createOnlyEnv,
    });
    this.ztwim = new ZtwimReconciler({ kube, clock: o.clock, log: log.child({ controller: 'ztwim' }), createOnlyEnv: o.createOnlyEnv });
    this.queue = new WorkQueue(
      async (key) => {
        o.onPass?.(key);
        const r = key === ZTWIM ? await this.ztwim.reconcile() : await this.operands.reconcile(key as OperandKind);
        return r;
      },
      { clock: o.clock, log, ...(o.retryable === undefined ? {} : { retryable: o.retryable }) },
    );
  }

  /** Runs until the signal aborts: informers synced first, then one pass per kind. */
  async run(signal: AbortSignal, onSynced?: () => void): Promise<void> {
    const { log } = this.o;
    for (const kind of [ZTWIM, ...OPERAND_KINDS] as const) {
      const inf = new Informer({ ...this.informerOptions(), resource: CR_RESOURCES[kind] });
      inf.addHandlers({
        onAdd: () => this.crChanged(kind, undefined, undefined),
        onUpdate: (a, b) => this.crChanged(kind, a, b),
        onDelete: () => this.crChanged(kind, undefined, undefined),
      });
      this.informers.push(inf);
    }
    for (const { apiVersion, kind } of OWNED_KINDS) {
      if (OPTIONAL_APIS.includes(apiVersion)) continue;
      const inf = await this.ownedInformer(apiVersion, kind);
      if (inf !== undefined) this.informers.push(inf);
    }
    const runs = this.informers.map((i) => i.run(signal));
    await Promise.all(this.informers.map((i) => i.waitForSync(signal)));
    await this.followOptionalKinds(signal);
    log.info(
      { informers: this.informers.length + this.optional.size, namespace: this.o.namespace, optional_apis: this.o.servedApis?.list() ?? [] },
      'Informers synced, reconciling',
    );
    onSynced?.();
    for (const k of [...OPERAND_KINDS, ZTWIM]) this.queue.add(k);
    await Promise.all([...runs, this.watchDiscovery(signal)]);
    await Promise.all([...this.optional.values()].map((o) => o.done));
    this.queue.stop();
  }

  /** What every informer of the manager shares. */
  private informerOptions() {
    return {
      client: this.o.client,
      clock: this.o.clock,
      ...(this.o.random === undefined ? {} : { random: this.o.random }),
      logger: this.o.log.child({ subsystem: 'informer' }),
      resyncMs: this.o.resyncMs ?? 600_000,
    };
  }

  /** An informer on the generated objects of one kind (by the managed-by label), or undefined when it is not served. */
  private async ownedInformer(apiVersion: string, kind: string): Promise<Informer | undefined> {
    const ref = await this.o.client.resourceFor(apiVersion, kind);
    if (ref === undefined) {
      this.o.log.info({ api_version: apiVersion, kind }, 'Kind not served: not watched');
      return undefined;
    }
    const inf = new Informer({
      ...this.informerOptions(),
      resource: ref,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
      ...(ref.namespaced ? { namespace: this.o.namespace } : {}),
    });
    const changed = (o: KubeObject): void => this.ownedChanged(o);
    inf.addHandlers({
      onAdd: (o, initial) => (initial ? undefined : changed(o)),
      onUpdate: (a, b) => (a.metadata.resourceVersion === b.metadata.resourceVersion ? undefined : changed(b)),
      onDelete: changed,
    });
    return inf;
  }

  /** Starts the informers of optional kinds now served, stops those of kinds no longer served. */
  private async followOptionalKinds(signal: AbortSignal): Promise<void> {
    const served = this.o.servedApis;
    if (served === undefined) return;
    for (const { apiVersion, kind } of OWNED_KINDS) {
      if (!OPTIONAL_APIS.includes(apiVersion)) continue;
      const key = `${apiVersion}/${kind}`;
      const running = this.optional.get(key);
      if (served.serves(apiVersion) && running === undefined && !signal.aborted) {
        const inf = await this.ownedInformer(apiVersion, kind);
        if (inf === undefined) continue;
        const abort = new AbortController();
        const stop = (): void => abort.abort();
        signal.addEventListener('abort', stop, { once: true });
        const done = inf
          .run(abort.signal)
          .catch((e: unknown) =>
            this.o.log.warn({ api_version: apiVersion, kind, error: (e as Error).message }, 'Informer of an optional kind stopped on an error'),
          )
          .finally(() => signal.removeEventListener('abort', stop));
        // Not waited for: the passes read with GETs; the informer only wakes them on changes.
        this.optional.set(key, { abort, done });
        this.o.log.info({ api_version: apiVersion, kind }, 'Optional kind served: watched');
      } else if (!served.serves(apiVersion) && running !== undefined) {
        running.abort.abort();
        await running.done;
        this.optional.delete(key);
        this.o.log.info({ api_version: apiVersion, kind }, 'Optional kind no longer served: not watched');
      }
    }
  }

  /** Asks discovery again every discoveryIntervalMs; a change re-runs every operand kind. */
  private async watchDiscovery(signal: AbortSignal): Promise<void> {
    const served = this.o.servedApis;
    if (served === undefined) return;
    const every = this.o.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS;
    while (!signal.aborted) {
      try {
        await this.o.clock.sleep(every, signal);
      } catch {
        return;
      }
      try {
        if (!(await served.refresh())) continue;
        this.o.log.info({ optional_apis: served.list() }, 'Served optional API groups changed: reconciling every operand');
        await this.followOptionalKinds(signal);
        for (const k of OPERAND_KINDS) this.queue.add(k);
      } catch (e) {
        if (!signal.aborted) this.o.log.warn({ error: (e as Error).message }, 'Discovery re-check failed; trying again at the next interval');
      }
    }
  }

  private crChanged(kind: CrKind, before: KubeObject | undefined, after: KubeObject | undefined): void {
    if (kind === ZTWIM) {
      if (before !== undefined && after !== undefined && !specChanged(before, after)) return; // its own status write
      for (const k of [...OPERAND_KINDS, ZTWIM]) this.queue.add(k);
      return;
    }
    if (before === undefined || after === undefined || specChanged(before, after)) this.queue.add(kind);
    if (before === undefined || after === undefined || JSON.stringify(before['status']) !== JSON.stringify(after['status'])) {
      this.queue.add(ZTWIM);
      if ((kind === 'SpireAgent' || kind === 'SpiffeCSIDriver') && readyStatus(before) !== readyStatus(after)) this.queue.add('SpireOIDCDiscoveryProvider');
    }
  }

  private ownedChanged(o: KubeObject): void {
    const kind = operandOfComponent(o.metadata.labels?.[COMPONENT_LABEL]);
    if (kind === undefined) return;
    this.queue.add(kind);
    if (kind === 'SpireServer' && o.kind === 'ConfigMap') this.queue.add('SpireAgent');
  }
}

/** A change the reconciler must act on: spec (generation), annotations, owners, deletion. */
function specChanged(a: KubeObject, b: KubeObject): boolean {
  const m = (o: KubeObject) =>
    JSON.stringify([o.metadata.generation, o.metadata.annotations, o.metadata.ownerReferences, o.metadata.deletionTimestamp, o.metadata.labels]);
  return m(a) !== m(b);
}

function readyStatus(o: KubeObject | undefined): string {
  const conds = (o?.['status'] as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? [];
  return conds.find((c) => c.type === 'Ready')?.status ?? '';
}
