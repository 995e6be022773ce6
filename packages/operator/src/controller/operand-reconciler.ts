// One reconcile pass of one operand kind (SpireServer, SpireAgent, SpiffeCSIDriver,
// SpireOIDCDiscoveryProvider), keyed to its singleton `cluster` (digest §2.1, §2.5):
//   1. read the ZTWIM CR and this CR (no CR: nothing to do; no ZTWIM: Ready=False/Failed);
//   2. make ZTWIM the controller owner of this CR;
//   3. render the operand (operator-api's renderers); invalid fields become conditions and the
//      pass ends there (not requeued: the next edit of the CR triggers a pass);
//   4. hold back what must wait (the agent DaemonSet until the bundle ConfigMap holds a bundle,
//      the OIDC Deployment until the agent and the CSI driver are Ready) and requeue;
//   5. for each object: create it if missing, else (unless create-only) server-side apply it when
//      the live object differs from the rendered one; record <Type>Available per kind;
//   6. delete what this CR no longer renders (resources.ts WITHDRAWABLE: a disabled Route or
//      ServiceMonitor; not in create-only mode) and drop the conditions that went with it;
//   7. workload health; CreateOnlyMode; Ready derived; status written only when it changed.
// API errors are recorded in the conditions and rethrown, so the work queue retries with backoff.
import type { Clock, Logger } from '@ztwim/core';
import type { OperandKind } from './aggregate.ts';
import { deriveReady, DISABLED_REASONS, removeCondition, sameConditions, setCondition, type ConditionInput, type OperatorCondition } from './conditions.ts';
import { createOnlyCondition, createOnlyMode } from './create-only.ts';
import { containsDesired, droppedOwnedField } from './drift.ts';
import { FIELD_MANAGER, type KubeObj, type OperatorKube, type OwnerRef } from './kube-port.ts';
import { conditionTypeFor, CR_RESOURCES, MANAGED_BY, MANAGED_BY_LABEL, SINGLETON, TRANSIENT_CONDITION_TYPES, WITHDRAWABLE } from './resources.ts';
import type { ReconcileResult } from './work-queue.ts';
import { workloadHealth } from './workload-health.ts';
import { internal } from '@ztwim/core';

/** The CRs a render reads (all of them: the agent's socket path must match the CSI driver's, ...). */
export interface CrSet {
  readonly ztwim: KubeObj;
  readonly SpireServer?: KubeObj;
  readonly SpireAgent?: KubeObj;
  readonly SpiffeCSIDriver?: KubeObj;
  readonly SpireOIDCDiscoveryProvider?: KubeObj;
}

/** One generated object; `createOnly`: created when absent, never updated (the bundle ConfigMap the server writes). */
export interface RenderedOperandObject {
  readonly object: KubeObj;
  readonly createOnly?: boolean;
}

/** What the renderers give for one operand: its objects, and the validation conditions. */
export interface OperandRender {
  readonly objects: readonly RenderedOperandObject[];
  readonly conditions: readonly ConditionInput[];
}

export type RenderOperand = (kind: OperandKind, crs: CrSet) => OperandRender;

export interface OperandReconcilerDeps {
  readonly kube: OperatorKube;
  readonly render: RenderOperand;
  readonly clock: Clock;
  readonly log: Logger;
  /** The operand namespace (OPERATOR_NAMESPACE). */
  readonly namespace: string;
  /** CREATE_ONLY_MODE from the environment. */
  readonly createOnlyEnv: boolean;
  /** How often a pass waiting for a rollout or a precondition runs again (default 3 s). */
  readonly recheckMs?: number;
}

/** Counters for tests and the bench (reconcile passes and writes; a pass at rest writes nothing). */
export interface ReconcileStats {
  passes: number;
  applies: number;
  statusWrites: number;
  /** Objects deleted because the CR no longer asks for them. */
  deletes: number;
}

const WORKLOAD_KINDS = new Set(['StatefulSet', 'DaemonSet', 'Deployment']);
const NOT_READY_REASON: Readonly<Record<string, string>> = {
  StatefulSet: 'StatefulSetNotReady',
  DaemonSet: 'DaemonSetNotReady',
  Deployment: 'DeploymentNotReady',
};

export function ownerRefOf(o: KubeObj, controller: boolean): OwnerRef {
  return { apiVersion: o.apiVersion ?? '', kind: o.kind ?? '', name: o.metadata.name ?? '', uid: o.metadata.uid ?? '', controller, blockOwnerDeletion: true };
}

/**
 * Makes `owner` the controller owner of operand CR `cr` (merge patch of ownerReferences, keeping
 * other owners); true when it had to write.
 */
export async function ensureControllerOwner(kube: OperatorKube, kind: OperandKind, cr: KubeObj, owner: KubeObj): Promise<boolean> {
  const refs = cr.metadata.ownerReferences ?? [];
  if (refs.some((r) => r.uid === owner.metadata.uid && r.controller === true)) return false;
  const others = refs.filter((r) => r.kind !== owner.kind);
  await kube.patch(CR_RESOURCES[kind], SINGLETON, { metadata: { ownerReferences: [...others, ownerRefOf(owner, true)] } });
  return true;
}

export function readyOf(o: KubeObj | undefined): boolean {
  const conds = (o?.['status'] as { conditions?: OperatorCondition[] } | undefined)?.conditions ?? [];
  return conds.some((c) => c.type === 'Ready' && c.status === 'True');
}

export class OperandReconciler {
  readonly stats: ReconcileStats = { passes: 0, applies: 0, statusWrites: 0, deletes: 0 };
  private readonly d: OperandReconcilerDeps;

  constructor(deps: OperandReconcilerDeps) {
    this.d = deps;
  }

  async reconcile(kind: OperandKind): Promise<ReconcileResult> {
    const { kube } = this.d;
    this.stats.passes++;
    const cr = await kube.get(CR_RESOURCES[kind], SINGLETON);
    if (cr === undefined || cr.metadata.deletionTimestamp !== undefined) return {};
    const ztwim = await kube.get(CR_RESOURCES.ZeroTrustWorkloadIdentityManager, SINGLETON);
    const current = (cr['status'] as { conditions?: OperatorCondition[] } | undefined)?.conditions ?? [];
    const gen = cr.metadata.generation;
    const now = this.d.clock.now();
    let conds: OperatorCondition[] = [...current];
    const set = (c: ConditionInput): void => {
      conds = setCondition(conds, c, now, gen);
    };

    if (ztwim === undefined) {
      set({ type: 'Ready', status: 'False', reason: 'Failed', message: 'ZeroTrustWorkloadIdentityManager "cluster" not found: create it first' });
      await this.writeStatus(kind, current, conds);
      return {};
    }
    if (await ensureControllerOwner(this.d.kube, kind, cr, ztwim)) this.stats.applies++;

    const crs = await this.crSet(ztwim);
    const rendered = this.d.render(kind, crs);
    for (const c of rendered.conditions) set(c);
    const invalid = rendered.conditions.some((c) => c.status === 'False' && !DISABLED_REASONS.has(c.reason));
    if (invalid) {
      set(deriveReady(conds));
      await this.writeStatus(kind, current, conds);
      return {};
    }

    const createOnly = createOnlyMode(this.d.createOnlyEnv, cr.metadata.annotations, ztwim.metadata.annotations);
    const spec = (ztwim['spec'] ?? {}) as { bundleConfigMap?: string };
    const bundleConfigMap = spec.bundleConfigMap ?? 'spire-bundle';
    const held = await this.heldBack(kind, crs, bundleConfigMap);
    const owner = ownerRefOf(cr, true);
    const results = new Map<string, { ok: boolean; messages: string[]; reason?: string }>();
    const record = (type: string, ok: boolean, message: string, reason?: string): void => {
      const r = results.get(type) ?? { ok: true, messages: [] };
      if (!ok && r.ok) {
        r.ok = false;
        r.messages = [];
        if (reason !== undefined) r.reason = reason;
      }
      if (ok === r.ok) r.messages.push(message);
      results.set(type, r);
    };
    let firstError: unknown;
    let waiting = held !== undefined;
    for (const { object: desired, createOnly: objectCreateOnly } of rendered.objects) {
      const type = conditionTypeFor(kind, desired, bundleConfigMap);
      const what = `${desired.kind ?? '?'} ${desired.metadata.namespace === undefined ? '' : `${desired.metadata.namespace}/`}${desired.metadata.name ?? '?'}`;
      if (held !== undefined && desired.kind === held.kind) {
        record(type, false, held.message, held.reason);
        continue;
      }
      try {
        const live = await this.applyOne(desired, owner, createOnly || objectCreateOnly === true);
        if (live !== undefined && WORKLOAD_KINDS.has(live.kind ?? desired.kind ?? '')) {
          const h = workloadHealth({ ...live, kind: live.kind ?? desired.kind ?? '' });
          if (!h.ready) waiting = true;
          record(type, h.ready, h.message, NOT_READY_REASON[desired.kind ?? '']);
        } else {
          record(type, true, `${what} is present`);
        }
      } catch (e) {
        firstError ??= e;
        record(type, false, `${what}: ${(e as Error).message}`, `${type.replace(/Available$/, '')}CreationFailed`);
      }
    }
    if (!createOnly) {
      try {
        await this.withdraw(
          kind,
          cr,
          rendered.objects.map((o) => o.object),
        );
      } catch (e) {
        firstError ??= e;
      }
    }
    for (const [type, r] of results) {
      set({
        type,
        status: r.ok ? 'True' : 'False',
        reason: r.ok ? 'Ready' : (r.reason ?? 'NotReady'),
        message: r.ok ? `${r.messages.length} object(s) up to date` : r.messages.join('; '),
      });
    }
    const produced = new Set([...rendered.conditions.map((c) => c.type), ...results.keys()]);
    for (const t of TRANSIENT_CONDITION_TYPES) if (!produced.has(t)) conds = removeCondition(conds, t);
    const co = createOnlyCondition(createOnly, conds);
    if (co !== undefined) set(co);
    set(deriveReady(conds));
    await this.writeStatus(kind, current, conds);
    if (firstError !== undefined) throw firstError;
    return waiting ? { requeueAfterMs: this.d.recheckMs ?? 3000 } : {};
  }

  /** The workload kind this operand must not create yet, and why (§2.5 ordering, made explicit). */
  private async heldBack(kind: OperandKind, crs: CrSet, bundleConfigMap: string): Promise<{ kind: string; reason: string; message: string } | undefined> {
    if (kind === 'SpireAgent') {
      const cm = await this.d.kube.get({ apiVersion: 'v1', resource: 'configmaps', namespaced: true, kind: 'ConfigMap' }, bundleConfigMap, this.d.namespace);
      const pem = ((cm?.['data'] ?? {}) as Record<string, string>)['bundle.crt'] ?? '';
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
        return {
          kind: 'DaemonSet',
          reason: 'WaitingForBundle',
          message: `waiting for the server to write bundle.crt into ConfigMap ${this.d.namespace}/${bundleConfigMap}`,
        };
      }
    }
    if (kind === 'SpireOIDCDiscoveryProvider') {
      const missing = (['SpireAgent', 'SpiffeCSIDriver'] as const).filter((k) => !readyOf(crs[k]));
      if (missing.length > 0) {
        return {
          kind: 'Deployment',
          reason: 'WaitingForAgent',
          message: `waiting for ${missing.join(' and ')} to be Ready: the provider's identity comes through them`,
        };
      }
    }
    return undefined;
  }

  /**
   * Deletes this operand's optional objects (WITHDRAWABLE) that the render no longer holds, when
   * their kind is served and the live object is ours (managed-by label, owned by this CR).
   */
  private async withdraw(kind: OperandKind, cr: KubeObj, rendered: readonly KubeObj[]): Promise<void> {
    const { kube } = this.d;
    for (const w of WITHDRAWABLE[kind]) {
      if (rendered.some((o) => o.kind === w.kind && o.metadata.name === w.name)) continue;
      const ref = await kube.resourceFor(w.apiVersion, w.kind);
      if (ref === undefined) continue;
      const ns = w.namespaced ? this.d.namespace : undefined;
      const live = await kube.get(ref, w.name, ns);
      if (live === undefined || live.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) continue;
      if (!(live.metadata.ownerReferences ?? []).some((r) => r.uid === cr.metadata.uid)) continue;
      await kube.delete(ref, w.name, ns);
      this.stats.deletes++;
      this.d.log.info({ kind: w.kind, name: w.name, namespace: ns ?? '' }, 'Deleted an object the CR no longer asks for');
    }
  }

  /** Creates or updates one object; returns the live object after the pass. */
  private async applyOne(desired: KubeObj, owner: OwnerRef, createOnly: boolean): Promise<KubeObj | undefined> {
    const { kube } = this.d;
    const ref = await kube.resourceFor(desired.apiVersion ?? '', desired.kind ?? '');
    if (ref === undefined) throw internal(`the apiserver serves no ${desired.kind ?? '?'} in ${desired.apiVersion ?? '?'}`);
    const obj: KubeObj = { ...desired, metadata: { ...desired.metadata, ownerReferences: [owner] } };
    const live = await kube.get(ref, obj.metadata.name ?? '', obj.metadata.namespace);
    if (live !== undefined) {
      // Create-only leaves every existing object alone, except SCCs (as ZTWIM).
      if (createOnly && desired.kind !== 'SecurityContextConstraints') return live;
      if (containsDesired(obj, live) && droppedOwnedField(obj, live, FIELD_MANAGER) === undefined) return live;
    }
    this.stats.applies++;
    return await kube.apply(ref, obj);
  }

  private async crSet(ztwim: KubeObj): Promise<CrSet> {
    const get = (k: OperandKind) => this.d.kube.get(CR_RESOURCES[k], SINGLETON);
    const [s, a, c, o] = await Promise.all([get('SpireServer'), get('SpireAgent'), get('SpiffeCSIDriver'), get('SpireOIDCDiscoveryProvider')]);
    return {
      ztwim,
      ...(s === undefined ? {} : { SpireServer: s }),
      ...(a === undefined ? {} : { SpireAgent: a }),
      ...(c === undefined ? {} : { SpiffeCSIDriver: c }),
      ...(o === undefined ? {} : { SpireOIDCDiscoveryProvider: o }),
    };
  }

  private async writeStatus(kind: OperandKind, current: readonly OperatorCondition[], next: OperatorCondition[]): Promise<void> {
    if (sameConditions(current, next)) return;
    this.stats.statusWrites++;
    await this.d.kube.patchStatus(CR_RESOURCES[kind], SINGLETON, { status: { conditions: next } });
    this.d.log.info(
      { kind, ready: next.find((c) => c.type === 'Ready')?.status ?? 'Unknown', reason: next.find((c) => c.type === 'Ready')?.reason ?? '' },
      'Status updated',
    );
  }
}
