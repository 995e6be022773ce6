// The matching half of a pass (spire-controller-manager's entriesState): current entries and
// declared entries meet under a key hashed from (spiffeID, parentID, sorted selectors); per key
// the most preferred declaration (oldest object, live before deleting, then UID) is set and the
// others are masked; its current entry is reused (updated when a mutable field differs) or it is
// created; surplus current entries are deleted unless a join-token agent parents them.
import { createHash } from 'node:crypto';
import type { RegEntry, Selector } from '../spire/entry.ts';

/** The object a declaration came from; its counters become the CR's status. */
export interface Declarer {
  readonly uid: string;
  /** metadata.creationTimestamp in ms (Kubernetes has second precision). */
  readonly createdMs: number;
  /** metadata.deletionTimestamp in ms, when the object is being deleted. */
  readonly deletingMs?: number | undefined;
  entriesToSet(): void;
  entryMasked(): void;
  entrySet(): void;
  entryFailed(): void;
}

export interface Declared {
  readonly entry: RegEntry;
  readonly by: Declarer;
}

export interface Plan {
  readonly toCreate: Declared[];
  readonly toUpdate: Declared[];
  readonly unchanged: Declared[];
  readonly toDelete: RegEntry[];
}

export function sortSelectors(selectors: readonly Selector[]): Selector[] {
  return [...selectors].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
}

/** sha256 over spiffeID, parentID and the sorted selectors' type and value, as SPIRE's makeEntryKey. */
export function entryKey(e: Pick<RegEntry, 'spiffeId' | 'parentId' | 'selectors'>): string {
  const h = createHash('sha256');
  h.update(e.spiffeId);
  h.update(e.parentId);
  for (const s of sortSelectors(e.selectors)) {
    h.update(s.type);
    h.update(s.value);
  }
  return h.digest('hex');
}

/** Preference order: older first; not deleting before deleting, later deletion first; then UID. */
export function compareDeclarers(a: Declarer, b: Declarer): number {
  if (a.createdMs !== b.createdMs) return a.createdMs < b.createdMs ? -1 : 1;
  const ad = a.deletingMs;
  const bd = b.deletingMs;
  if (ad === undefined && bd !== undefined) return -1;
  if (ad !== undefined && bd === undefined) return 1;
  if (ad !== undefined && bd !== undefined && ad !== bd) return ad < bd ? 1 : -1;
  return a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((v, i) => v === y[i]);
}

/** The fields SPIRE's getOutdatedEntryFields compares (the key fields cannot differ). */
export function outdatedFields(declared: RegEntry, current: RegEntry): string[] {
  const out: string[] = [];
  if (declared.x509SvidTtl !== current.x509SvidTtl) out.push('x509SVIDTTL');
  if (declared.jwtSvidTtl !== current.jwtSvidTtl) out.push('jwtSVIDTTL');
  if (!sameSet(declared.federatesWith, current.federatesWith)) out.push('federatesWith');
  if (declared.admin !== current.admin) out.push('admin');
  if (declared.downstream !== current.downstream) out.push('downstream');
  if (!sameSet(declared.dnsNames, current.dnsNames)) out.push('dnsNames');
  if (declared.hint !== current.hint) out.push('hint');
  if (declared.storeSvid !== current.storeSvid) out.push('storeSVID');
  return out;
}

const JOIN_TOKEN_PARENT_PATH = '/spire/agent/join_token/';

/** An entry whose parent is a join-token agent and that has a `spiffe_id` selector (an alias). */
export function isJoinTokenEntry(e: RegEntry): boolean {
  const m = /^spiffe:\/\/[^/]+(\/.*)?$/.exec(e.parentId);
  if (!(m?.[1] ?? '').startsWith(JOIN_TOKEN_PARENT_PATH)) return false;
  return e.selectors.some((s) => s.type === 'spiffe_id');
}

export interface PlanOptions {
  /** `<prefix>.` or '' (new entries get `<prefix>.<uuid>` ids when set). */
  readonly entryIDPrefix: string;
  readonly newId: () => string;
}

/** Builds the plan and counts toSet / masked on the declarers. */
export function planEntries(current: readonly RegEntry[], declared: readonly Declared[], opts: PlanOptions): Plan {
  const state = new Map<string, { current: RegEntry[]; declared: Declared[] }>();
  const slot = (e: RegEntry): { current: RegEntry[]; declared: Declared[] } => {
    const k = entryKey(e);
    let s = state.get(k);
    if (s === undefined) state.set(k, (s = { current: [], declared: [] }));
    return s;
  };
  for (const e of current) slot(e).current.push(e);
  for (const d of declared) slot(d.entry).declared.push(d);

  const plan: Plan = { toCreate: [], toUpdate: [], unchanged: [], toDelete: [] };
  for (const s of state.values()) {
    let currents = s.current;
    if (s.declared.length > 0) {
      const sorted = [...s.declared].sort((a, b) => compareDeclarers(a.by, b.by));
      const preferred = sorted[0] as Declared;
      preferred.by.entriesToSet();
      for (const other of sorted.slice(1)) other.by.entryMasked();
      const existing = currents[0];
      if (existing === undefined) {
        const id = preferred.entry.id === '' && opts.entryIDPrefix !== '' ? `${opts.entryIDPrefix}${opts.newId()}` : preferred.entry.id;
        plan.toCreate.push({ entry: { ...preferred.entry, id }, by: preferred.by });
      } else {
        const withId: Declared = { entry: { ...preferred.entry, id: existing.id }, by: preferred.by };
        if (outdatedFields(preferred.entry, existing).length > 0) plan.toUpdate.push(withId);
        else plan.unchanged.push(withId);
        currents = currents.slice(1);
      }
    }
    for (const e of currents) if (!isJoinTokenEntry(e)) plan.toDelete.push(e);
  }
  return plan;
}

export interface PrefixOptions {
  readonly entryIDPrefix: string;
  readonly entryIDPrefixCleanup: string | undefined;
}

/**
 * Splits the server's entries into those the registrar manages and those it only deletes
 * (shouldProcessOrDeleteEntryID): with a prefix only `<prefix>.*` ids are managed; the cleanup
 * prefix ('' = ids without a dot) marks entries of an earlier setup for deletion.
 */
export function partitionByPrefix(entries: readonly RegEntry[], o: PrefixOptions): { managed: RegEntry[]; deleteOnly: RegEntry[] } {
  if (o.entryIDPrefix === '') return { managed: [...entries], deleteOnly: [] };
  const managed: RegEntry[] = [];
  const deleteOnly: RegEntry[] = [];
  for (const e of entries) {
    if (e.id.startsWith(o.entryIDPrefix)) managed.push(e);
    else if (o.entryIDPrefixCleanup === '' ? !e.id.includes('.') : o.entryIDPrefixCleanup !== undefined && e.id.startsWith(o.entryIDPrefixCleanup))
      deleteOnly.push(e);
  }
  return { managed, deleteOnly };
}
