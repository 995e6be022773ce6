// The ZeroTrustWorkloadIdentityManager reconciler (digest §2.1, §2.6): it owns the four operand
// CRs (controller owner reference, so deleting it deletes them and, through them, everything they
// generated) and aggregates their state into status.operands[], OperandsAvailable and Ready.
import type { Clock, Logger } from '@ztwim/core';
import { aggregateOperands, OPERAND_KINDS, operandsField, operandStatus } from './aggregate.ts';
import { canonicalJson, sameConditions, setCondition, type OperatorCondition } from './conditions.ts';
import { createOnlyCondition, createOnlyMode } from './create-only.ts';
import type { OperatorKube } from './kube-port.ts';
import { ensureControllerOwner, type ReconcileStats } from './operand-reconciler.ts';
import { CR_RESOURCES, SINGLETON } from './resources.ts';
import type { ReconcileResult } from './work-queue.ts';

export interface ZtwimReconcilerDeps {
  readonly kube: OperatorKube;
  readonly clock: Clock;
  readonly log: Logger;
  readonly createOnlyEnv: boolean;
}

export class ZtwimReconciler {
  readonly stats: ReconcileStats = { passes: 0, applies: 0, statusWrites: 0, deletes: 0 };
  private readonly d: ZtwimReconcilerDeps;

  constructor(deps: ZtwimReconcilerDeps) {
    this.d = deps;
  }

  async reconcile(): Promise<ReconcileResult> {
    const { kube } = this.d;
    this.stats.passes++;
    const ztwim = await kube.get(CR_RESOURCES.ZeroTrustWorkloadIdentityManager, SINGLETON);
    if (ztwim === undefined || ztwim.metadata.deletionTimestamp !== undefined) return {};
    const entries = [];
    for (const kind of OPERAND_KINDS) {
      const cr = await kube.get(CR_RESOURCES[kind], SINGLETON);
      if (cr !== undefined && cr.metadata.deletionTimestamp === undefined && (await ensureControllerOwner(kube, kind, cr, ztwim))) this.stats.applies++;
      entries.push(operandStatus(kind, cr as Parameters<typeof operandStatus>[1]));
    }
    const status = (ztwim['status'] ?? {}) as { conditions?: OperatorCondition[]; operands?: unknown };
    const current = status.conditions ?? [];
    const now = this.d.clock.now();
    const gen = ztwim.metadata.generation;
    const agg = aggregateOperands(entries);
    let conds = setCondition(current, agg.operandsAvailable, now, gen);
    const co = createOnlyCondition(createOnlyMode(this.d.createOnlyEnv, ztwim.metadata.annotations), conds);
    if (co !== undefined) conds = setCondition(conds, co, now, gen);
    conds = setCondition(conds, agg.ready, now, gen);
    const operands = operandsField(entries);
    if (!sameConditions(current, conds) || canonicalJson(status.operands ?? []) !== canonicalJson(operands)) {
      this.stats.statusWrites++;
      await kube.patchStatus(CR_RESOURCES.ZeroTrustWorkloadIdentityManager, SINGLETON, { status: { conditions: conds, operands } });
      this.d.log.info({ kind: 'ZeroTrustWorkloadIdentityManager', ready: agg.ready.status, message: agg.ready.message }, 'Status updated');
    }
    return {};
  }
}
