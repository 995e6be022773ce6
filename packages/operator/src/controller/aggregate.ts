// The ZeroTrustWorkloadIdentityManager's view of its operands (digest §2.6): one
// status.operands[] entry per operand kind, and OperandsAvailable/Ready from them.
import { countsAgainstReady, type ConditionInput, type OperatorCondition } from './conditions.ts';

export type OperandKind = 'SpireServer' | 'SpireAgent' | 'SpiffeCSIDriver' | 'SpireOIDCDiscoveryProvider';
export const OPERAND_KINDS: readonly OperandKind[] = ['SpireServer', 'SpireAgent', 'SpiffeCSIDriver', 'SpireOIDCDiscoveryProvider'];

export interface OperandStatus {
  readonly name: string;
  readonly kind: OperandKind;
  readonly ready: 'true' | 'false';
  readonly message: string;
  readonly conditions?: readonly OperatorCondition[];
}

type State = 'ready' | 'progressing' | 'failed';

const PROGRESSING = new Set(['Progressing', 'NotFound', 'InitialReconcile', 'Reconciling']);

/** The operands[] entry of one kind from its CR (undefined: the CR does not exist). */
export function operandStatus(
  kind: OperandKind,
  cr: { readonly metadata: { readonly name?: string }; readonly status?: { readonly conditions?: readonly OperatorCondition[] } } | undefined,
): OperandStatus & { state: State } {
  if (cr === undefined) return { name: 'cluster', kind, ready: 'false', message: 'CR not found', state: 'progressing' };
  const name = cr.metadata.name ?? 'cluster';
  const conditions = cr.status?.conditions ?? [];
  if (conditions.length === 0) return { name, kind, ready: 'false', message: 'Waiting for initial reconciliation', state: 'progressing' };
  const ready = conditions.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return { name, kind, ready: 'true', message: 'Ready', conditions, state: 'ready' };
  const failedConds = conditions.filter(countsAgainstReady);
  const message = [ready?.message ?? 'Not ready', ...failedConds.map((c) => `${c.type}: ${c.reason}`)].join('; ');
  const reason = ready?.reason ?? '';
  const progressing = PROGRESSING.has(reason) || (reason === '' && /progress|waiting|reconcil/i.test(ready?.message ?? ''));
  return { name, kind, ready: 'false', message, conditions: failedConds, state: progressing ? 'progressing' : 'failed' };
}

/** OperandsAvailable (and Ready, the same) on the ZTWIM CR from the operands' states. */
export function aggregateOperands(entries: readonly (OperandStatus & { state: State })[]): { operandsAvailable: ConditionInput; ready: ConditionInput } {
  const notReady = entries.filter((e) => e.state !== 'ready');
  let c: Omit<ConditionInput, 'type'>;
  if (notReady.length === 0) c = { status: 'True', reason: 'Ready', message: 'All operands are ready' };
  else if (notReady.every((e) => e.state === 'progressing'))
    c = { status: 'False', reason: 'Progressing', message: `Waiting for operands: [${notReady.map((e) => e.kind).join(', ')}]` };
  else c = { status: 'False', reason: 'Failed', message: `Some operands not ready: [${notReady.map((e) => e.kind).join(', ')}]` };
  return { operandsAvailable: { type: 'OperandsAvailable', ...c }, ready: { type: 'Ready', ...c } };
}

/** status.operands[] without the internal state. */
export function operandsField(entries: readonly (OperandStatus & { state: State })[]): OperandStatus[] {
  return entries.map(({ state: _state, ...rest }) => rest);
}
