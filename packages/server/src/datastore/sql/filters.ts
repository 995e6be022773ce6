import { invalidArgument } from '@ztwim/core';
import { MATCH_BEHAVIORS, type AttestedNodeFilter, type EntryFilter, type MatchBehavior, type Page, type Selector } from '../datastore.ts';
import type { SqlValue } from './driver.ts';

export interface Where {
  readonly clauses: string[];
  readonly params: SqlValue[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidArgument(`invalid filter: ${what} must be a string`);
  return v;
}

function optBool(v: unknown, what: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalidArgument(`invalid filter: ${what} must be a boolean`);
  return v;
}

function matchOf(v: unknown, what: string): MatchBehavior {
  if (typeof v !== 'string' || !(MATCH_BEHAVIORS as readonly string[]).includes(v)) {
    throw invalidArgument(`invalid filter: ${what}.match must be one of ${MATCH_BEHAVIORS.join(', ')}`);
  }
  return v as MatchBehavior;
}

/** Validates and deduplicates a selector list (order kept). */
export function checkSelectors(v: unknown, what: string, allowEmpty = false): Selector[] {
  if (!Array.isArray(v)) throw invalidArgument(`${what} must be a list of selectors`);
  const seen = new Set<string>();
  const out: Selector[] = [];
  for (const s of v as unknown[]) {
    if (!isObject(s) || typeof s['type'] !== 'string' || typeof s['value'] !== 'string' || s['type'] === '') {
      throw invalidArgument(`${what}: selector must have a non-empty string type and a string value`);
    }
    const k = selectorKeyOf(s['type'], s['value']);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ type: s['type'], value: s['value'] });
  }
  if (out.length === 0 && !allowEmpty) throw invalidArgument(`${what}: empty selector set`);
  return out;
}

export function selectorKeyOf(type: string, value: string): string {
  return `${type}\u0000${value}`;
}

/** Canonical, order-free key of a selector set (used for "similar entry" lookups). */
export function canonicalSelectorKey(selectors: readonly Selector[]): string {
  return JSON.stringify([...new Set(selectors.map((s) => selectorKeyOf(s.type, s.value)))].sort().map((k) => k.split('\u0000')));
}

/** `spiffe://td` or `td` → `td`. */
export function normalizeTrustDomain(td: string): string {
  return td.startsWith('spiffe://') ? td.slice('spiffe://'.length) : td;
}

/**
 * SQL for a set-match on a child table `table` (key column `key`, matched columns `cols`) against
 * the outer row's key expression. EXACT = same set, SUBSET = row ⊆ filter, SUPERSET = row ⊇ filter,
 * ANY = intersects.
 */
function setMatchSql(
  table: string,
  key: string,
  outer: string,
  cols: readonly string[],
  tuples: readonly (readonly string[])[],
  match: MatchBehavior,
  params: SqlValue[],
): string {
  const inList = (): string => {
    const parts = tuples.map((t) => {
      params.push(...t);
      return `(${cols.map((c) => `s.${c} = ?`).join(' AND ')})`;
    });
    return `(${parts.join(' OR ')})`;
  };
  const n = tuples.length;
  switch (match) {
    case 'ANY':
      return `${outer} IN (SELECT s.${key} FROM ${table} s WHERE ${inList()})`;
    case 'SUPERSET':
      return `${outer} IN (SELECT s.${key} FROM ${table} s WHERE ${inList()} GROUP BY s.${key} HAVING COUNT(*) = ${n})`;
    case 'EXACT': {
      const sup = `${outer} IN (SELECT s.${key} FROM ${table} s WHERE ${inList()} GROUP BY s.${key} HAVING COUNT(*) = ${n})`;
      return `(${sup} AND (SELECT COUNT(*) FROM ${table} s WHERE s.${key} = ${outer}) = ${n})`;
    }
    case 'SUBSET': {
      const any = `${outer} IN (SELECT s.${key} FROM ${table} s WHERE ${inList()})`;
      return `(${any} AND NOT EXISTS (SELECT 1 FROM ${table} s WHERE s.${key} = ${outer} AND NOT ${inList()}))`;
    }
  }
}

function selectorMatch(v: unknown, what: string): { selectors: Selector[]; match: MatchBehavior } {
  if (!isObject(v)) throw invalidArgument(`invalid filter: ${what} must be an object`);
  return { selectors: checkSelectors(v['selectors'], `invalid filter: ${what}`), match: matchOf(v['match'], what) };
}

export function entryWhere(filter: unknown): Where {
  const w: Where = { clauses: [], params: [] };
  if (filter === undefined) return w;
  if (!isObject(filter)) throw invalidArgument('invalid filter: must be an object');
  const known = new Set(['bySpiffeId', 'byParentId', 'bySelectors', 'byFederatesWith', 'byHint', 'byDownstream']);
  for (const k of Object.keys(filter)) {
    if (!known.has(k)) throw invalidArgument(`invalid filter: unknown field ${k}`);
  }
  const f = filter as EntryFilter;
  const spiffeId = optString(f.bySpiffeId, 'bySpiffeId');
  if (spiffeId !== undefined) {
    w.clauses.push('e.spiffe_id = ?');
    w.params.push(spiffeId);
  }
  const parentId = optString(f.byParentId, 'byParentId');
  if (parentId !== undefined) {
    w.clauses.push('e.parent_id = ?');
    w.params.push(parentId);
  }
  const hint = optString(f.byHint, 'byHint');
  if (hint !== undefined) {
    w.clauses.push('e.hint = ?');
    w.params.push(hint);
  }
  if (optBool(f.byDownstream, 'byDownstream') === true) w.clauses.push('e.downstream = 1');
  if (f.bySelectors !== undefined) {
    const m = selectorMatch(f.bySelectors, 'bySelectors');
    const tuples = m.selectors.map((s) => [s.type, s.value]);
    w.clauses.push(setMatchSql('entry_selectors', 'entry_seq', 'e.seq', ['type', 'value'], tuples, m.match, w.params));
  }
  if (f.byFederatesWith !== undefined) {
    const v: unknown = f.byFederatesWith;
    if (!isObject(v)) throw invalidArgument('invalid filter: byFederatesWith must be an object');
    const tds = v['trustDomains'];
    if (!Array.isArray(tds) || tds.length === 0 || !tds.every((t) => typeof t === 'string' && t !== '')) {
      throw invalidArgument('invalid filter: byFederatesWith.trustDomains must be a non-empty list of trust domains');
    }
    const set = [...new Set((tds as string[]).map(normalizeTrustDomain))];
    const match = matchOf(v['match'], 'byFederatesWith');
    w.clauses.push(
      setMatchSql(
        'entry_federates',
        'entry_seq',
        'e.seq',
        ['trust_domain'],
        set.map((t) => [t]),
        match,
        w.params,
      ),
    );
  }
  return w;
}

export function nodeWhere(filter: unknown): Where {
  const w: Where = { clauses: [], params: [] };
  if (filter === undefined) return w;
  if (!isObject(filter)) throw invalidArgument('invalid filter: must be an object');
  const known = new Set(['byAttestationType', 'bySelectorMatch', 'byBanned', 'byCanReattest', 'byExpiresBefore']);
  for (const k of Object.keys(filter)) {
    if (!known.has(k)) throw invalidArgument(`invalid filter: unknown field ${k}`);
  }
  const f = filter as AttestedNodeFilter;
  const type = optString(f.byAttestationType, 'byAttestationType');
  if (type !== undefined) {
    w.clauses.push('n.data_type = ?');
    w.params.push(type);
  }
  const banned = optBool(f.byBanned, 'byBanned');
  if (banned !== undefined) w.clauses.push(banned ? "n.serial_number = ''" : "n.serial_number <> ''");
  const re = optBool(f.byCanReattest, 'byCanReattest');
  if (re !== undefined) w.clauses.push(`n.can_reattest = ${re ? 1 : 0}`);
  if (f.byExpiresBefore !== undefined) {
    if (typeof f.byExpiresBefore !== 'number' || !Number.isFinite(f.byExpiresBefore)) {
      throw invalidArgument('invalid filter: byExpiresBefore must be Unix seconds');
    }
    w.clauses.push('n.expires_at < ?');
    w.params.push(Math.floor(f.byExpiresBefore));
  }
  if (f.bySelectorMatch !== undefined) {
    const m = selectorMatch(f.bySelectorMatch, 'bySelectorMatch');
    const tuples = m.selectors.map((s) => [s.type, s.value]);
    w.clauses.push(setMatchSql('node_selectors', 'spiffe_id', 'n.spiffe_id', ['type', 'value'], tuples, m.match, w.params));
  }
  return w;
}

const TOKEN_RE = /^([a-z]):([1-9][0-9]{0,15})$/;

/** Opaque page token: base64url of `<kind>:<last seq>`. */
export function encodePageToken(kind: string, seq: number): string {
  return Buffer.from(`${kind}:${seq}`).toString('base64url');
}

export interface PageArgs {
  readonly after: number;
  /** 0 = unlimited. */
  readonly limit: number;
}

export function pageArgs(kind: string, page: Page | undefined): PageArgs {
  if (page === undefined) return { after: 0, limit: 0 };
  if (typeof page !== 'object' || page === null) throw invalidArgument('invalid page');
  const size = page.pageSize ?? 0;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
    throw invalidArgument('invalid page size: must be a non-negative integer');
  }
  const token = page.pageToken ?? '';
  if (typeof token !== 'string') throw invalidArgument('invalid page token');
  if (token === '') return { after: 0, limit: size };
  const m = /^[A-Za-z0-9_-]+$/.test(token) ? TOKEN_RE.exec(Buffer.from(token, 'base64url').toString('latin1')) : null;
  if (m === null || m[1] !== kind) throw invalidArgument('invalid page token');
  return { after: Number(m[2]), limit: size };
}
