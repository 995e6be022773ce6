// Create-only mode (digest §2.5): objects are created when missing but never updated, so an
// administrator's hand edits survive. ZTWIM 1.0 reads env CREATE_ONLY_MODE; 0.2 read the CR
// annotation `ztwim.openshift.io/create-only: "true"` into a flag that stuck until restart. Here
// both are honoured and the annotation is live (lift, §8): removing it turns the mode off.
import type { ConditionInput, OperatorCondition } from './conditions.ts';

export const CREATE_ONLY_ANNOTATION = 'ztwim.openshift.io/create-only';

/** CREATE_ONLY_MODE=true (case-insensitive) in the operator's environment. */
export function createOnlyFromEnv(env: Readonly<Record<string, string | undefined>>): boolean {
  return (env['CREATE_ONLY_MODE'] ?? '').trim().toLowerCase() === 'true';
}

/** Whether objects of this CR are only created: the env, or the annotation on this CR or on the ZTWIM CR. */
export function createOnlyMode(envOn: boolean, ...annotations: ReadonlyArray<Readonly<Record<string, string>> | undefined>): boolean {
  return envOn || annotations.some((a) => (a?.[CREATE_ONLY_ANNOTATION] ?? '').trim().toLowerCase() === 'true');
}

/**
 * The CreateOnlyMode condition to set, or undefined to leave it out: True while on; False only
 * after it was True (as ZTWIM: a CR that never was in create-only mode gets no such condition).
 */
export function createOnlyCondition(on: boolean, current: readonly OperatorCondition[]): ConditionInput | undefined {
  if (on)
    return { type: 'CreateOnlyMode', status: 'True', reason: 'CreateOnlyModeEnabled', message: 'Create-only mode is on: existing objects are not updated' };
  if (current.some((c) => c.type === 'CreateOnlyMode'))
    return { type: 'CreateOnlyMode', status: 'False', reason: 'CreateOnlyModeDisabled', message: 'Create-only mode is off' };
  return undefined;
}
