// One reconcile pass (spire-controller-manager's entryReconciler.reconcile): list the server's
// entries (managed ones by prefix), declare ClusterStaticEntries and ClusterSPIFFEIDs, match,
// apply deletes, creates and updates in batches, then write each CR's status where it changed.
// A pod pass (podPass) does the same for a few pods only: their entries (those with their
// `k8s:pod-uid` selector) against what the CRs declare for them; status waits for a full pass.
import type { Logger } from '@ztwim/core';
import { isRegistrarError } from '../errors.ts';
import { parseClusterSPIFFEID, parseClusterStaticEntry } from '../crd/parse.ts';
import type { ParsedClusterSPIFFEID, ParsedClusterStaticEntry } from '../crd/types.ts';
import type { ClusterSPIFFEIDStats, ClusterStaticEntryStatus } from '../crd/types.ts';
import type { EntryClient, RegEntry, BatchStatus } from '../spire/entry.ts';
import type { ClusterView, KubeJson } from './cluster-view.ts';
import {
  ClusterSPIFFEIDDeclarer,
  ClusterStaticEntryDeclarer,
  declareClusterSPIFFEIDs,
  declareClusterStaticEntries,
  declarePodEntries,
  reconcilesClass,
  type DeclareContext,
} from './declare.ts';
import { partitionByPrefix, planEntries, type Declared, type Plan } from './plan.ts';
import { asError } from '@ztwim/core';

/** Where the pass reads the CRs (informer stores, or static manifests). */
export interface CrSource {
  clusterSPIFFEIDs(): Iterable<KubeJson>;
  clusterStaticEntries(): Iterable<KubeJson>;
}

/** Writes CR status (undefined: no status is written, e.g. static manifests). */
export interface StatusWriter {
  clusterSPIFFEID(name: string, stats: ClusterSPIFFEIDStats, signal: AbortSignal): Promise<void>;
  clusterStaticEntry(name: string, status: ClusterStaticEntryStatus, signal: AbortSignal): Promise<void>;
}

export interface EntryPassOptions extends DeclareContext {
  readonly entries: EntryClient;
  readonly view: ClusterView;
  readonly crs: CrSource;
  readonly status: StatusWriter | undefined;
  readonly className: string;
  readonly watchClassless: boolean;
  readonly reconcileClusterSPIFFEIDs: boolean;
  readonly reconcileClusterStaticEntries: boolean;
  readonly entryIDPrefix: string;
  readonly entryIDPrefixCleanup: string | undefined;
  readonly newId: () => string;
  readonly log: Logger;
}

/** A pod an incremental pass looks at: by name in the cluster view, by uid on the server. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** What podPass did; `needFull` when only a full pass can do the job (or the pods' turn was lost). */
export interface PodPassResult {
  readonly summary: PassSummary | undefined;
  readonly needFull: boolean;
}

export interface PassSummary {
  readonly current: number;
  readonly declared: number;
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
  readonly failures: number;
  readonly statusWrites: number;
}

/** Parsed CRs by uid+resourceVersion, so an unchanged CR's templates are parsed once. */
class ParseCache<T> {
  private readonly items = new Map<string, { rv: string; value: T | Error }>();
  private readonly parse: (raw: unknown) => T;

  constructor(parse: (raw: unknown) => T) {
    this.parse = parse;
  }

  get(raw: KubeJson): T | Error {
    const key = raw.metadata?.uid ?? raw.metadata?.name ?? '';
    const rv = String(raw.metadata?.['resourceVersion'] ?? '');
    const hit = this.items.get(key);
    if (hit !== undefined && hit.rv === rv && rv !== '') return hit.value;
    let value: T | Error;
    try {
      value = this.parse(raw);
    } catch (e) {
      value = asError(e);
    }
    this.items.set(key, { rv, value });
    return value;
  }

  /** Drops entries of objects no longer listed. */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.items.keys()) if (!keys.has(k)) this.items.delete(k);
  }
}

function sameStats(a: unknown, b: ClusterSPIFFEIDStats): boolean {
  const s = (a as { stats?: Record<string, unknown> } | undefined)?.stats;
  if (s === undefined) return false;
  return (Object.keys(b) as Array<keyof ClusterSPIFFEIDStats>).every((k) => (s[k] ?? 0) === b[k]);
}

function sameStaticStatus(a: unknown, b: ClusterStaticEntryStatus): boolean {
  const s = a as Partial<Record<keyof ClusterStaticEntryStatus, unknown>> | undefined;
  if (s === undefined) return false;
  return (s.rendered ?? false) === b.rendered && (s.masked ?? false) === b.masked && (s.set ?? false) === b.set;
}

function entryFields(e: RegEntry): Record<string, unknown> {
  return { entry_id: e.id, spiffe_id: e.spiffeId, parent_id: e.parentId, selectors: e.selectors.map((s) => `${s.type}:${s.value}`).join(',') };
}

export class EntryReconciler {
  private readonly o: EntryPassOptions;
  private readonly spiffeIds = new ParseCache<ParsedClusterSPIFFEID>(parseClusterSPIFFEID);
  private readonly statics = new ParseCache<ParsedClusterStaticEntry>(parseClusterStaticEntry);
  /** Keys of parse errors already logged (a bad CR is logged once per resourceVersion). */
  private readonly loggedParseErrors = new Set<string>();

  constructor(options: EntryPassOptions) {
    this.o = options;
  }

  async pass(signal: AbortSignal): Promise<PassSummary | undefined> {
    const o = this.o;
    let all: RegEntry[];
    try {
      all = await o.entries.listEntries(signal);
    } catch (e) {
      o.log.error({ err: e instanceof Error ? e.message : String(e) }, 'Failed to list SPIRE entries');
      return undefined;
    }
    const { managed, deleteOnly } = partitionByPrefix(all, o);

    const declared: Declared[] = [];
    const staticDeclarers: ClusterStaticEntryDeclarer[] = [];
    if (o.reconcileClusterStaticEntries) {
      for (const [raw, parsed] of this.ofClass('ClusterStaticEntry', o.crs.clusterStaticEntries(), this.statics)) {
        staticDeclarers.push(new ClusterStaticEntryDeclarer(parsed instanceof Error ? undefined : parsed, raw));
      }
      declareClusterStaticEntries(staticDeclarers, declared);
    }

    const spiffeIdDeclarers: ClusterSPIFFEIDDeclarer[] = [];
    if (o.reconcileClusterSPIFFEIDs) {
      for (const [raw, parsed] of this.ofClass('ClusterSPIFFEID', o.crs.clusterSPIFFEIDs(), this.spiffeIds)) {
        // SPIRE logs "Failed to parse ClusterSPIFFEID spec" and skips it (no status).
        if (!(parsed instanceof Error)) spiffeIdDeclarers.push(new ClusterSPIFFEIDDeclarer(parsed, raw));
      }
      declareClusterSPIFFEIDs(o.view, o, spiffeIdDeclarers, declared, {
        renderFailed: (cr, pod, reason) => o.log.warn({ cluster_spiffe_id: cr, pod, reason }, 'Failed to render entry'),
      });
    }

    const applied = await this.applyPlan(planEntries(managed, declared, o), deleteOnly, signal);

    let statusWrites = 0;
    if (o.status !== undefined) {
      for (const d of spiffeIdDeclarers) {
        if (sameStats(d.raw['status'], d.stats)) continue;
        try {
          await o.status.clusterSPIFFEID(d.name, { ...d.stats }, signal);
          statusWrites++;
        } catch (e) {
          o.log.error({ cluster_spiffe_id: d.name, err: e instanceof Error ? e.message : String(e) }, 'Failed to update status');
        }
      }
      for (const d of staticDeclarers) {
        if (sameStaticStatus(d.raw['status'], d.status)) continue;
        try {
          await o.status.clusterStaticEntry(d.name, { ...d.status }, signal);
          statusWrites++;
        } catch (e) {
          o.log.error({ cluster_static_entry: d.name, err: e instanceof Error ? e.message : String(e) }, 'Failed to update status');
        }
      }
    }
    return { current: managed.length, declared: declared.length, ...applied, statusWrites };
  }

  /**
   * An incremental pass over `pods` (their events since the last pass): lists each pod's entries
   * by its `k8s:pod-uid` selector, declares what the CRs give it (declarePodEntries), applies the
   * difference. A pod's entries carry its own pod-uid selector, so their keys are the pod's alone
   * and masking among them is decided within the pod. Writes no status (counts are per CR, over
   * all pods: the next full pass writes them). needFull when a ClusterStaticEntry declares a
   * pod-uid selector (its key could meet a pod's) or the server could not be listed.
   */
  async podPass(pods: readonly PodRef[], signal: AbortSignal): Promise<PodPassResult> {
    const o = this.o;
    if (!o.reconcileClusterSPIFFEIDs) return { summary: undefined, needFull: false };
    if (o.reconcileClusterStaticEntries && this.staticEntryDeclaresPods()) return { summary: undefined, needFull: true };
    const declarers: ClusterSPIFFEIDDeclarer[] = [];
    for (const [raw, parsed] of this.ofClass('ClusterSPIFFEID', o.crs.clusterSPIFFEIDs(), this.spiffeIds)) {
      if (!(parsed instanceof Error)) declarers.push(new ClusterSPIFFEIDDeclarer(parsed, raw));
    }
    const current: RegEntry[] = [];
    const declared: Declared[] = [];
    for (const ref of pods) {
      try {
        current.push(...partitionByPrefix(await o.entries.listEntriesOfPod(ref.uid, signal), o).managed);
      } catch (e) {
        o.log.error({ err: e instanceof Error ? e.message : String(e), pod: `${ref.namespace}/${ref.name}` }, 'Failed to list SPIRE entries');
        return { summary: undefined, needFull: true };
      }
      // Gone, or a new pod of the same name (its own event follows): nothing declared for this uid.
      const pod = o.view.pod(ref.namespace, ref.name);
      if (pod !== undefined && pod.metadata?.uid === ref.uid) {
        declarePodEntries(o.view, o, declarers, pod, declared, {
          renderFailed: (cr, p, reason) => o.log.warn({ cluster_spiffe_id: cr, pod: p, reason }, 'Failed to render entry'),
        });
      }
    }
    const applied = await this.applyPlan(planEntries(current, declared, o), [], signal);
    return { summary: { current: current.length, declared: declared.length, ...applied, statusWrites: 0 }, needFull: false };
  }

  private staticEntryDeclaresPods(): boolean {
    for (const [, parsed] of this.ofClass('ClusterStaticEntry', this.o.crs.clusterStaticEntries(), this.statics)) {
      if (!(parsed instanceof Error) && parsed.spec.selectors.some((s) => s.type === 'k8s' && s.value.startsWith('pod-uid:'))) return true;
    }
    return false;
  }

  /** Deletes (the plan's and `alsoDelete`), creates and updates, in batches; marks the declarers. */
  private async applyPlan(
    plan: Plan,
    alsoDelete: readonly RegEntry[],
    signal: AbortSignal,
  ): Promise<{ created: number; updated: number; deleted: number; failures: number }> {
    const o = this.o;
    const toDelete = [...plan.toDelete, ...alsoDelete];
    if (toDelete.length > 0) {
      const results = await this.batch('delete', toDelete.length, () =>
        o.entries.deleteEntries(
          toDelete.map((e) => e.id),
          signal,
        ),
      );
      results.forEach((r, i) => {
        const e = toDelete[i] as RegEntry;
        if (r.code === 0) o.log.info(entryFields(e), 'Deleted entry');
        else o.log.error({ ...entryFields(e), code: r.code, reason: r.message }, 'Failed to delete entry');
      });
    }
    const created = await this.apply('create', plan.toCreate, signal);
    const updated = await this.apply('update', plan.toUpdate, signal);
    for (const d of plan.unchanged) d.by.entrySet();
    return { created: created.ok, updated: updated.ok, deleted: toDelete.length, failures: created.failed + updated.failed };
  }

  /** The CRs of our class, each parsed (cached) or its parse error (logged once); drops stale cache entries. */
  private ofClass<T>(kind: string, raws: Iterable<KubeJson>, cache: ParseCache<T>): Array<[KubeJson, T | Error]> {
    const out: Array<[KubeJson, T | Error]> = [];
    const seen = new Set<string>();
    for (const raw of raws) {
      seen.add(raw.metadata?.uid ?? raw.metadata?.name ?? '');
      if (!reconcilesClass(String(raw.spec?.['className'] ?? ''), this.o.className, this.o.watchClassless)) continue;
      const parsed = cache.get(raw);
      if (parsed instanceof Error) this.logParseError(kind, raw, parsed);
      out.push([raw, parsed]);
    }
    cache.retain(seen);
    return out;
  }

  private logParseError(kind: string, raw: KubeJson, e: Error): void {
    const key = `${kind}/${raw.metadata?.uid ?? ''}/${String(raw.metadata?.['resourceVersion'] ?? '')}`;
    if (this.loggedParseErrors.has(key)) return;
    this.loggedParseErrors.add(key);
    this.o.log.error(
      { kind, name: raw.metadata?.name ?? '', field: isRegistrarError(e) ? e.field : undefined, reason: e.message },
      'Failed to parse custom resource',
    );
  }

  /** A batch call whose transport failure counts as a failure of each item. */
  private async batch(what: string, n: number, call: () => Promise<BatchStatus[]>): Promise<BatchStatus[]> {
    try {
      return await call();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.o.log.error({ op: what, count: n, err: message }, 'Failed to apply entries');
      return Array.from({ length: n }, () => ({ code: 14, message }));
    }
  }

  private async apply(what: 'create' | 'update', items: readonly Declared[], signal: AbortSignal): Promise<{ ok: number; failed: number }> {
    if (items.length === 0) return { ok: 0, failed: 0 };
    const entries = items.map((d) => d.entry);
    const results = await this.batch(what, items.length, () =>
      what === 'create' ? this.o.entries.createEntries(entries, signal) : this.o.entries.updateEntries(entries, signal),
    );
    let ok = 0;
    let failed = 0;
    items.forEach((d, i) => {
      const r = results[i] ?? { code: 2, message: 'no result' };
      if (r.code === 0) {
        ok++;
        d.by.entrySet();
        this.o.log.info(entryFields(d.entry), what === 'create' ? 'Created entry' : 'Updated entry');
      } else {
        failed++;
        d.by.entryFailed();
        this.o.log.error({ ...entryFields(d.entry), code: r.code, reason: r.message }, what === 'create' ? 'Failed to create entry' : 'Failed to update entry');
      }
    });
    return { ok, failed };
  }
}
