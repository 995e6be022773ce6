// status.conditions[] bookkeeping for the five kinds (digest §1.6): metav1.Condition semantics
// (lastTransitionTime moves only when the status flips) and the derivation of Ready from the other
// conditions at the end of a reconcile.

import type { Condition } from '@ztwim/k8s';

/** metav1.Condition as the operator writes it. */
export type OperatorCondition = Condition;

export type ConditionInput = Omit<OperatorCondition, 'lastTransitionTime' | 'observedGeneration'>;

/** Reasons that mean "still rolling out", not "broken" (§1.6). */
export const PROGRESSING_REASONS: ReadonlySet<string> = new Set([
  'StatefulSetNotReady',
  'DaemonSetNotReady',
  'DeploymentNotReady',
  'WaitingForBundle',
  'WaitingForAgent',
  'WaitingForCSIDriver',
]);

/** Types that never count towards Ready. */
const NOT_DERIVED: ReadonlySet<string> = new Set(['Ready', 'CreateOnlyMode']);

/** False for a reason the user chose, not a fault (a Route turned off): not counted towards Ready. */
export const DISABLED_REASONS: ReadonlySet<string> = new Set(['ManagedRouteDisabled']);

/** Whether a condition says something is wrong or pending (False, and not a chosen "off"). */
export function countsAgainstReady(c: Pick<OperatorCondition, 'type' | 'status' | 'reason'>): boolean {
  return !NOT_DERIVED.has(c.type) && c.status === 'False' && !DISABLED_REASONS.has(c.reason);
}

/**
 * The list with `c` set: a new type is appended; an existing one keeps its lastTransitionTime
 * unless its status changes. Order is kept so an unchanged status compares equal.
 */
export function setCondition(list: readonly OperatorCondition[], c: ConditionInput, now: Date, generation?: number): OperatorCondition[] {
  const prev = list.find((x) => x.type === c.type);
  const next: OperatorCondition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    lastTransitionTime: prev !== undefined && prev.status === c.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  return prev === undefined ? [...list, next] : list.map((x) => (x.type === c.type ? next : x));
}

/** Drops a condition type (a condition that no longer applies, e.g. a Route when routes are off). */
export function removeCondition(list: readonly OperatorCondition[], type: string): OperatorCondition[] {
  return list.filter((x) => x.type !== type);
}

/**
 * Ready from the other conditions (§1.6): False/Failed when any is False for a reason other than
 * a rollout in progress; False/Progressing when only rollouts are pending; True/Ready otherwise.
 * CreateOnlyMode is left out.
 */
export function deriveReady(list: readonly OperatorCondition[]): ConditionInput {
  const falses = list.filter(countsAgainstReady);
  const failed = falses.filter((c) => !PROGRESSING_REASONS.has(c.reason));
  if (failed.length > 0) {
    return { type: 'Ready', status: 'False', reason: 'Failed', message: failed.map((c) => `${c.type}: ${c.message}`).join('; ') };
  }
  if (falses.length > 0) {
    return { type: 'Ready', status: 'False', reason: 'Progressing', message: falses.map((c) => `${c.type}: ${c.message}`).join('; ') };
  }
  return { type: 'Ready', status: 'True', reason: 'Ready', message: 'All components are ready' };
}

/**
 * JSON with object keys sorted: the apiserver hands objects back with their keys in its own
 * order, so a plain JSON.stringify would see a change (and write) where there is none.
 */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)))
      : x,
  );
}

/** Whether two condition lists say the same (key order aside): no status write when they do. */
export function sameConditions(a: readonly OperatorCondition[] | undefined, b: readonly OperatorCondition[]): boolean {
  return canonicalJson(a ?? []) === canonicalJson(b);
}
