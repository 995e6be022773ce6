// "Why has this workload no identity?" (`ztwim explain`): given an agent, its node selectors, the
// registration entries and a workload's selectors, say which entries the agent would serve the
// workload, which entries come nearest and the selectors each lacks, and which entries match the
// selectors but are out of this agent's reach (the usual cause: a parent ID that is not the agent
// or one of its aliases).
//
// The reach is the server's (packages/server/src/datastore/sql/entry-index.ts `authorized`, after
// SPIRE's authorized-entries walk): entries parented by the agent and, recursively, by any reached
// entry's SPIFFE ID, plus the descendants of node-alias entries (parent `spiffe://<td>/spire/server`)
// whose selectors are all among the agent's; only SPIFFE IDs in the agent's trust domain. The match
// is the agent's: an entry is served to a workload when every one of its selectors is among the
// workload's.

import { wireSpiffeIdString } from '@ztwim/core';
import type { Entry } from '@ztwim/proto';

export interface ExplainSelector {
  readonly type: string;
  readonly value: string;
}

export interface ExplainEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: readonly ExplainSelector[];
  readonly federatesWith: readonly string[];
  /** Unix seconds after which the server prunes the entry; 0 = never. */
  readonly expiresAt: number;
  readonly hint: string;
}

export interface ExplainInput {
  readonly agentId: string;
  /** The agent's node selectors (from the server's record of its attestation). */
  readonly nodeSelectors: readonly ExplainSelector[];
  readonly workloadSelectors: readonly ExplainSelector[];
  readonly entries: readonly ExplainEntry[];
  /** Unix seconds. */
  readonly now: number;
  /** How many near misses to keep (default 5). */
  readonly nearest?: number;
}

export interface NearMiss {
  readonly entry: ExplainEntry;
  /** The entry's selectors the workload does not have, in the entry's order. */
  readonly missing: readonly ExplainSelector[];
}

export interface Explanation {
  readonly agentId: string;
  /**
   * SPIFFE IDs the agent also holds: node-alias entries that apply to it (parent
   * spiffe://<td>/spire/server) and node entries in its reach (`token generate -spiffeID`'s).
   */
  readonly aliases: readonly string[];
  /** How many entries the agent is authorised for. */
  readonly reachable: number;
  /** Entries the workload gets (X509-SVIDs and JWT-SVIDs for their SPIFFE IDs), in SPIFFE ID order. */
  readonly matched: readonly ExplainEntry[];
  /** Of `matched`, the IDs of entries past their `entryExpiry` (the server prunes them soon). */
  readonly expired: readonly string[];
  /** Trust domains whose bundles the workload gets besides its own (union of the matched entries'). */
  readonly federatesWith: readonly string[];
  /** Reachable entries that do not match, fewest missing selectors first (at most `nearest`). */
  readonly nearMisses: readonly NearMiss[];
  /** How many reachable entries do not match (nearMisses holds the nearest of them). */
  readonly unmatched: number;
  /** Entries whose selectors the workload has but that the agent is not authorised for. */
  readonly outOfReach: readonly ExplainEntry[];
}

/** A Server API entry as explain reads it (SPIFFE IDs as URIs, federated domains as spiffe:// IDs). */
export function explainEntryOf(e: Entry): ExplainEntry {
  return {
    id: e.id,
    spiffeId: wireSpiffeIdString(e.spiffeId),
    parentId: wireSpiffeIdString(e.parentId),
    selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })),
    federatesWith: e.federatesWith.map((td) => (td.startsWith('spiffe://') ? td : `spiffe://${td}`)),
    expiresAt: Number(e.expiresAt),
    hint: e.hint,
  };
}

const key = (s: ExplainSelector): string => `${s.type}:${s.value}`;

/** `spiffe://td/path` → `td` (the text up to the first slash after the scheme). */
export function trustDomainOf(id: string): string {
  const rest = id.startsWith('spiffe://') ? id.slice('spiffe://'.length) : id;
  const slash = rest.indexOf('/');
  return slash < 0 ? rest : rest.slice(0, slash);
}

function byParent(entries: readonly ExplainEntry[]): Map<string, ExplainEntry[]> {
  const out = new Map<string, ExplainEntry[]>();
  for (const e of entries) {
    let list = out.get(e.parentId);
    if (list === undefined) out.set(e.parentId, (list = []));
    list.push(e);
  }
  return out;
}

/**
 * The entries agents are authorised for (the server's walk, see the file comment), with the
 * entries indexed by parent once, so that counting for many agents costs one pass each.
 */
export class ReachIndex {
  readonly #children: Map<string, ExplainEntry[]>;

  constructor(entries: readonly ExplainEntry[]) {
    this.#children = byParent(entries);
  }

  /** The node-alias entries that apply to an agent with these node selectors. */
  aliasesOf(td: string, nodeSelectors: readonly ExplainSelector[]): ExplainEntry[] {
    const node = new Set(nodeSelectors.map(key));
    return (this.#children.get(`spiffe://${td}/spire/server`) ?? []).filter(
      (e) => e.selectors.length > 0 && trustDomainOf(e.spiffeId) === td && e.selectors.every((s) => node.has(key(s))),
    );
  }

  reachable(agentId: string, nodeSelectors: readonly ExplainSelector[]): ExplainEntry[] {
    const td = trustDomainOf(agentId);
    const seen = new Set<string>([agentId]);
    const queue = [agentId];
    for (const a of this.aliasesOf(td, nodeSelectors)) {
      if (!seen.has(a.spiffeId)) {
        seen.add(a.spiffeId);
        queue.push(a.spiffeId);
      }
    }
    const taken = new Set<string>();
    const out: ExplainEntry[] = [];
    for (let i = 0; i < queue.length; i++) {
      for (const e of this.#children.get(queue[i] as string) ?? []) {
        if (taken.has(e.id) || trustDomainOf(e.spiffeId) !== td) continue;
        taken.add(e.id);
        out.push(e);
        if (!seen.has(e.spiffeId)) {
          seen.add(e.spiffeId);
          queue.push(e.spiffeId);
        }
      }
    }
    return out;
  }
}

/** The entries an agent is authorised for (the server's walk, see the file comment). */
export function reachableEntries(agentId: string, nodeSelectors: readonly ExplainSelector[], entries: readonly ExplainEntry[]): ExplainEntry[] {
  return new ReachIndex(entries).reachable(agentId, nodeSelectors);
}

/**
 * An entry that names a node, not a workload: no selectors, or only `spiffe_id` selectors (the
 * alias `token generate -spiffeID` makes: parent the agent, selector `spiffe_id:<agent ID>`).
 * Workload attestors never produce `spiffe_id` selectors, so such an entry never matches a
 * workload and is no near miss either.
 */
function isNodeEntry(e: ExplainEntry): boolean {
  return e.selectors.every((s) => s.type === 'spiffe_id');
}

function compareEntries(a: ExplainEntry, b: ExplainEntry): number {
  return a.spiffeId < b.spiffeId ? -1 : a.spiffeId > b.spiffeId ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function explain(input: ExplainInput): Explanation {
  const td = trustDomainOf(input.agentId);
  const have = new Set(input.workloadSelectors.map(key));
  const index = new ReachIndex(input.entries);
  const reachable = index.reachable(input.agentId, input.nodeSelectors);
  const reachableIds = new Set(reachable.map((e) => e.id));

  const matched: ExplainEntry[] = [];
  const misses: NearMiss[] = [];
  for (const e of reachable) {
    if (isNodeEntry(e)) continue;
    const missing = e.selectors.filter((s) => !have.has(key(s)));
    if (missing.length === 0) matched.push(e);
    else misses.push({ entry: e, missing });
  }
  matched.sort(compareEntries);
  misses.sort((a, b) => a.missing.length - b.missing.length || compareEntries(a.entry, b.entry));

  const outOfReach = input.entries
    .filter((e) => !reachableIds.has(e.id) && !isNodeEntry(e) && trustDomainOf(e.spiffeId) === td && e.selectors.every((s) => have.has(key(s))))
    .filter((e) => e.parentId !== `spiffe://${td}/spire/server`)
    .sort(compareEntries);

  const federatesWith = [...new Set(matched.flatMap((e) => e.federatesWith))].sort();
  return {
    agentId: input.agentId,
    aliases: [
      ...new Set([...index.aliasesOf(td, input.nodeSelectors), ...reachable.filter((e) => e.selectors.length > 0 && isNodeEntry(e))].map((e) => e.spiffeId)),
    ].sort(),
    reachable: reachable.length,
    matched,
    expired: matched.filter((e) => e.expiresAt > 0 && e.expiresAt <= input.now).map((e) => e.id),
    federatesWith,
    nearMisses: misses.slice(0, Math.max(0, input.nearest ?? 5)),
    unmatched: misses.length,
    outOfReach,
  };
}

const fmtSelectors = (s: readonly ExplainSelector[]): string => (s.length === 0 ? '(none)' : s.map(key).join(', '));

/** The explanation as text for a terminal. */
export function formatExplanation(x: Explanation, workloadSelectors: readonly ExplainSelector[], nodeSelectors: readonly ExplainSelector[]): string {
  const lines: string[] = [];
  lines.push(`Agent:              ${x.agentId}`);
  lines.push(`Agent selectors:    ${fmtSelectors(nodeSelectors)}`);
  if (x.aliases.length > 0) lines.push(`Node aliases:       ${x.aliases.join(', ')}`);
  lines.push(`Entries in reach:   ${x.reachable}`);
  lines.push(`Workload selectors: ${fmtSelectors(workloadSelectors)}`);
  lines.push('');
  if (x.matched.length === 0) {
    lines.push("No identity issued: no entry in this agent's reach has all its selectors among the workload's.");
  } else {
    lines.push(`The workload gets ${x.matched.length} identit${x.matched.length === 1 ? 'y' : 'ies'}:`);
    for (const e of x.matched) {
      const expired = x.expired.includes(e.id) ? ' (entry expired: the server prunes it)' : '';
      lines.push(`  ${e.spiffeId}  entry ${e.id}, parent ${e.parentId}${e.hint === '' ? '' : `, hint ${e.hint}`}${expired}`);
    }
    if (x.federatesWith.length > 0) lines.push(`  and the bundles of: ${x.federatesWith.join(', ')}`);
  }
  if (x.nearMisses.length > 0) {
    lines.push('');
    lines.push(`Nearest entries that do not match (${x.nearMisses.length} of ${x.unmatched}):`);
    for (const m of x.nearMisses) {
      lines.push(`  ${m.entry.spiffeId}  entry ${m.entry.id}: lacks ${m.missing.map(key).join(', ')}`);
    }
  }
  if (x.outOfReach.length > 0) {
    lines.push('');
    lines.push(`Entries whose selectors the workload has, out of this agent's reach (${x.outOfReach.length}):`);
    for (const e of x.outOfReach) {
      lines.push(`  ${e.spiffeId}  entry ${e.id}: parent ${e.parentId} is neither this agent, one of its aliases, nor an entry in its reach`);
    }
  }
  return `${lines.join('\n')}\n`;
}
