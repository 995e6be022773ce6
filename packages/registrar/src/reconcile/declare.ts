// The declaring half of a pass: every selected pod's entry from each ClusterSPIFFEID (rendered
// with the template evaluator), and each ClusterStaticEntry's entry, with the counters that
// become the CRs' status. SPIRE's addClusterSPIFFEIDEntriesState / renderPodEntry, with fallback
// ClusterSPIFFEIDs processed last and only for pods no other ClusterSPIFFEID declared an entry for.
import { isNamespaceIgnored } from '../config/manager-config.ts';
import { matchesLabelSelector } from '../labels.ts';
import { parseSelector } from '../crd/parse.ts';
import type { ParsedClusterSPIFFEID, ParsedClusterStaticEntry, ClusterSPIFFEIDStats, ClusterStaticEntryStatus } from '../crd/types.ts';
import { renderSpiffeId, templateDataFor, type Template } from '../template/index.ts';
import type { RegEntry, Selector } from '../spire/entry.ts';
import type { ClusterView, KubeJson } from './cluster-view.ts';
import type { Declared, Declarer } from './plan.ts';

export interface DeclareContext {
  readonly trustDomain: string;
  readonly clusterName: string;
  readonly clusterDomain: string;
  readonly ignoreNamespaces: readonly RegExp[];
  /** The config's parentIDTemplate, parsed; undefined = the node's k8s_psat agent ID. */
  readonly parentIDTemplate: Template | undefined;
}

type MutableStats = { -readonly [K in keyof ClusterSPIFFEIDStats]: ClusterSPIFFEIDStats[K] };

function timeMs(s: unknown): number | undefined {
  if (typeof s !== 'string' || s === '') return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A ClusterSPIFFEID being declared for: its next status.stats. */
export class ClusterSPIFFEIDDeclarer implements Declarer {
  readonly parsed: ParsedClusterSPIFFEID;
  readonly raw: KubeJson;
  readonly uid: string;
  readonly createdMs: number;
  readonly deletingMs: number | undefined;
  readonly stats: MutableStats = {
    namespacesSelected: 0,
    namespacesIgnored: 0,
    podsSelected: 0,
    podEntryRenderFailures: 0,
    entriesMasked: 0,
    entriesToSet: 0,
    entryFailures: 0,
  };

  constructor(parsed: ParsedClusterSPIFFEID, raw: KubeJson) {
    this.parsed = parsed;
    this.raw = raw;
    this.uid = parsed.meta.uid;
    this.createdMs = timeMs(parsed.meta.creationTimestamp) ?? 0;
    this.deletingMs = timeMs(raw.metadata?.deletionTimestamp);
  }

  get name(): string {
    return this.parsed.meta.name;
  }

  entriesToSet(): void {
    this.stats.entriesToSet++;
  }
  entryMasked(): void {
    this.stats.entriesMasked++;
  }
  entrySet(): void {}
  entryFailed(): void {
    this.stats.entryFailures++;
  }
}

/** A ClusterStaticEntry being declared for: its next status. */
export class ClusterStaticEntryDeclarer implements Declarer {
  readonly parsed: ParsedClusterStaticEntry | undefined;
  readonly raw: KubeJson;
  readonly name: string;
  readonly uid: string;
  readonly createdMs: number;
  readonly deletingMs: number | undefined;
  readonly status: { -readonly [K in keyof ClusterStaticEntryStatus]: ClusterStaticEntryStatus[K] } = { rendered: false, masked: false, set: false };

  constructor(parsed: ParsedClusterStaticEntry | undefined, raw: KubeJson) {
    this.parsed = parsed;
    this.raw = raw;
    this.name = raw.metadata?.name ?? '';
    this.uid = raw.metadata?.uid ?? '';
    this.createdMs = timeMs(raw.metadata?.creationTimestamp) ?? 0;
    this.deletingMs = timeMs(raw.metadata?.deletionTimestamp);
  }

  entriesToSet(): void {}
  entryMasked(): void {
    this.status.masked = true;
  }
  /** Created, updated or already as declared (SPIRE sets it only on create; see docs/registrar.md). */
  entrySet(): void {
    this.status.set = true;
  }
  entryFailed(): void {}
}

/** `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<clusterDomain>` for each Endpoints of the pod. */
export function endpointDnsNames(endpoints: Iterable<KubeJson>, clusterDomain: string): string[] {
  const out: string[] = [];
  for (const e of endpoints) {
    const svc = e.metadata?.name ?? '';
    const ns = e.metadata?.namespace ?? '';
    if (svc === '') continue;
    out.push(svc, `${svc}.${ns}`, `${svc}.${ns}.svc`);
    if (clusterDomain !== '') out.push(`${svc}.${ns}.svc.${clusterDomain}`);
  }
  return out;
}

/** One pod's entry from one ClusterSPIFFEID; throws (a render failure) with the reason. */
export function renderPodEntry(cr: ParsedClusterSPIFFEID, ctx: DeclareContext, pod: KubeJson, node: KubeJson, endpoints: Iterable<KubeJson>): RegEntry {
  const spec = cr.spec;
  const data = templateDataFor(ctx, pod, node);
  const spiffeId = renderSpiffeId(spec.spiffeIDTemplate, data, ctx.trustDomain).toString();
  const parentId =
    ctx.parentIDTemplate === undefined
      ? `spiffe://${ctx.trustDomain}/spire/agent/k8s_psat/${ctx.clusterName}/${node.metadata?.uid ?? ''}`
      : renderSpiffeId(ctx.parentIDTemplate, data, ctx.trustDomain).toString();
  const selectors: Selector[] = [{ type: 'k8s', value: `pod-uid:${pod.metadata?.uid ?? ''}` }];
  spec.workloadSelectorTemplates.forEach((t, i) => selectors.push(parseSelector(t.render(data), `spec.workloadSelectorTemplates[${i}]`)));
  const dns: string[] = [];
  for (const t of spec.dnsNameTemplates) dns.push(t.render(data));
  if (spec.autoPopulateDNSNames) dns.push(...endpointDnsNames(endpoints, ctx.clusterDomain));
  return {
    id: '',
    spiffeId,
    parentId,
    selectors,
    x509SvidTtl: spec.ttlSeconds,
    jwtSvidTtl: spec.jwtTtlSeconds,
    federatesWith: spec.federatesWith.map((td) => td.name),
    admin: spec.admin,
    downstream: spec.downstream,
    dnsNames: [...new Set(dns)],
    hint: spec.hint,
    storeSvid: false,
  };
}

export interface DeclareLog {
  renderFailed(cr: string, pod: string, reason: string): void;
}

/** Non-fallback ClusterSPIFFEIDs first, then the fallback ones (which only see pods left over). */
function fallbackLast(crs: readonly ClusterSPIFFEIDDeclarer[]): ClusterSPIFFEIDDeclarer[] {
  return [...crs.filter((c) => !c.parsed.spec.fallback), ...crs.filter((c) => c.parsed.spec.fallback)];
}

/**
 * One pod of a selected, not ignored namespace against one ClusterSPIFFEID: counts it, renders
 * and declares its entry. `podsWithIdentity` holds the pods a non-fallback one declared for.
 */
function declarePod(
  view: ClusterView,
  ctx: DeclareContext,
  cr: ClusterSPIFFEIDDeclarer,
  pod: KubeJson,
  podsWithIdentity: Set<string>,
  out: Declared[],
  log?: DeclareLog,
): void {
  const spec = cr.parsed.spec;
  if (!matchesLabelSelector(spec.podSelector, pod.metadata?.labels)) return;
  const uid = pod.metadata?.uid ?? '';
  const nsName = pod.metadata?.namespace ?? '';
  if (spec.fallback && podsWithIdentity.has(uid)) return;
  cr.stats.podsSelected++;
  const nodeName = pod.spec?.['nodeName'];
  // An unscheduled pod, or one whose node is gone: nothing to declare yet (SPIRE: NotFound).
  const node = typeof nodeName === 'string' && nodeName !== '' ? view.node(nodeName) : undefined;
  if (node === undefined) return;
  let entry: RegEntry;
  try {
    entry = renderPodEntry(cr.parsed, ctx, pod, node, spec.autoPopulateDNSNames ? view.endpointsOfPod(nsName, uid) : []);
  } catch (e) {
    cr.stats.podEntryRenderFailures++;
    log?.renderFailed(cr.name, `${nsName}/${pod.metadata?.name ?? ''}`, e instanceof Error ? e.message : String(e));
    return;
  }
  out.push({ entry, by: cr });
  if (!spec.fallback) podsWithIdentity.add(uid);
}

/**
 * Declares the entries of every ClusterSPIFFEID (already filtered by class). Non-fallback ones
 * first; a fallback one skips pods any non-fallback one declared an entry for.
 */
export function declareClusterSPIFFEIDs(
  view: ClusterView,
  ctx: DeclareContext,
  crs: readonly ClusterSPIFFEIDDeclarer[],
  out: Declared[],
  log?: DeclareLog,
): void {
  const podsWithIdentity = new Set<string>();
  const namespaces = [...view.namespaces()];
  for (const cr of fallbackLast(crs)) {
    for (const ns of namespaces) {
      if (!matchesLabelSelector(cr.parsed.spec.namespaceSelector, ns.metadata?.labels)) continue;
      cr.stats.namespacesSelected++;
      const nsName = ns.metadata?.name ?? '';
      if (isNamespaceIgnored(ctx.ignoreNamespaces, nsName)) {
        cr.stats.namespacesIgnored++;
        continue;
      }
      for (const pod of view.podsInNamespace(nsName)) declarePod(view, ctx, cr, pod, podsWithIdentity, out, log);
    }
  }
}

/**
 * Declares one pod's entries (an incremental pass): what declareClusterSPIFFEIDs declares for it,
 * since a pod's entries depend on the pod, its namespace, its node and its Endpoints only. The
 * declarers' counters then cover this pod alone.
 */
export function declarePodEntries(
  view: ClusterView,
  ctx: DeclareContext,
  crs: readonly ClusterSPIFFEIDDeclarer[],
  pod: KubeJson,
  out: Declared[],
  log?: DeclareLog,
): void {
  const nsName = pod.metadata?.namespace ?? '';
  if (isNamespaceIgnored(ctx.ignoreNamespaces, nsName)) return;
  let ns: KubeJson | undefined;
  for (const n of view.namespaces()) if (n.metadata?.name === nsName) ns = n;
  if (ns === undefined) return;
  const podsWithIdentity = new Set<string>();
  for (const cr of fallbackLast(crs)) {
    if (matchesLabelSelector(cr.parsed.spec.namespaceSelector, ns.metadata?.labels)) declarePod(view, ctx, cr, pod, podsWithIdentity, out, log);
  }
}

/** Declares each ClusterStaticEntry's entry (those that parsed; the others stay rendered=false). */
export function declareClusterStaticEntries(crs: readonly ClusterStaticEntryDeclarer[], out: Declared[]): void {
  for (const cr of crs) {
    const p = cr.parsed;
    if (p === undefined) continue;
    cr.status.rendered = true;
    out.push({
      by: cr,
      entry: {
        id: '',
        spiffeId: p.spec.spiffeId.toString(),
        parentId: p.spec.parentId.toString(),
        selectors: p.spec.selectors.map((s) => ({ type: s.type, value: s.value })),
        x509SvidTtl: p.spec.x509SvidTtlSeconds,
        jwtSvidTtl: p.spec.jwtSvidTtlSeconds,
        federatesWith: p.spec.federatesWith.map((td) => td.name),
        admin: p.spec.admin,
        downstream: p.spec.downstream,
        dnsNames: [...p.spec.dnsNames],
        hint: p.spec.hint,
        storeSvid: p.spec.storeSvid,
      },
    });
  }
}

/** className filtering (reconcileClass): the configured class, or classless when watchClassless. */
export function reconcilesClass(crClass: string, className: string, watchClassless: boolean): boolean {
  return (crClass === '' && watchClassless) || crClass === className;
}
