// renderOperands: the whole identity plane from its CRs, purely. Normalizes the CRs (either
// shape), validates them (conditions for every invalid field), and renders the objects of each
// valid operand with their labels, owner hints and config hashes. The controllers apply the
// objects and merge the conditions into each CR's status.
import { OPERAND_KINDS, normalize, type CrSet, type Normalized1_0, type OperandKey } from '../api/normalize.ts';
import { validate, type ConditionInput, type ValidationResult } from '../validate/validate.ts';
import type { PlaneIdentity } from './configs.ts';
import { resolveContext, type RenderContext, type ResolvedContext } from './context.ts';
import { renderAgentObjects } from './agent-objects.ts';
import { renderCsiObjects } from './csi-objects.ts';
import { renderOidcObjects } from './oidc-objects.ts';
import type { ConfigName, OperandRender, RenderedObject } from './objects-common.ts';
import { renderServerObjects, serverAddressForAgents } from './server-objects.ts';

export interface RenderResult {
  /** Every object of every valid operand, in apply order (server, agent, CSI, OIDC). */
  readonly objects: readonly RenderedObject[];
  /** Conditions for each operand CR present: ConfigurationValid, TTLConfigurationValid, skip notes. */
  readonly conditions: Readonly<Partial<Record<OperandKey, readonly ConditionInput[]>>>;
  /** Pod-template annotation → SHA-256 of the rendered config. */
  readonly configHashes: Readonly<Record<string, string>>;
  /** The rendered config files, for logs and for checking them with the real binaries. */
  readonly configs: Readonly<Partial<Record<ConfigName, string>>>;
  readonly normalized: Normalized1_0;
  readonly validation: ValidationResult;
}

function skipped(type: string, reason: string, message: string): ConditionInput {
  return { type, status: 'True', reason, message };
}

const noPrometheus = skipped(
  'ServiceMonitorSkipped',
  'ServiceMonitorAPINotServed',
  'monitoring.coreos.com/v1 is not served (no Prometheus operator CRDs): no ServiceMonitor',
);
const noScc = skipped(
  'OpenShiftObjectsSkipped',
  'SecurityContextConstraintsAPINotServed',
  'security.openshift.io/v1 or route.openshift.io/v1 is not served: no SecurityContextConstraints',
);

export function renderOperands(input: CrSet, context: RenderContext): RenderResult {
  const ctx: ResolvedContext = resolveContext(context);
  const normalized = normalize(input);
  const validation = validate(input, normalized, { variant: ctx.variant });
  const conditions: Partial<Record<OperandKey, ConditionInput[]>> = {};
  for (const [k, v] of Object.entries(validation.conditions) as Array<[OperandKey, readonly ConditionInput[]]>) conditions[k] = [...v];
  const objects: RenderedObject[] = [];
  const hashes: Record<string, string> = {};
  const configs: Partial<Record<ConfigName, string>> = {};
  // where each 0.2 field of an operand went (True: it never makes the operand not Ready)
  for (const key of Object.keys(OPERAND_KINDS) as OperandKey[]) {
    const notes = normalized.conversions.filter((n) => n.kind === OPERAND_KINDS[key]);
    if (input[key] !== undefined && notes.length > 0) {
      (conditions[key] ??= []).push(skipped('DeprecatedFieldsConverted', 'Shape0_2Converted', notes.map((n) => n.message).join('; ')));
    }
  }
  const z = normalized.ztwim?.spec;
  if (z?.trustDomain === undefined || z.clusterName === undefined) {
    return { objects, conditions, configHashes: hashes, configs, normalized, validation };
  }
  const id: PlaneIdentity = { trustDomain: z.trustDomain, clusterName: z.clusterName, bundleConfigMap: z.bundleConfigMap };
  const note = (key: OperandKey, c: ConditionInput): void => {
    (conditions[key] ??= []).push(c);
  };

  const take = (key: OperandKey, r: OperandRender, notes: ReadonlyArray<ConditionInput | false>): void => {
    objects.push(...r.objects);
    Object.assign(hashes, r.configHashes);
    Object.assign(configs, r.configs);
    for (const n of notes) if (n !== false) note(key, n);
  };
  const noOpenShift = !ctx.hasOpenShiftGroups;
  const monitorSkipped = (sm: { enabled: string } | undefined): ConditionInput | false => sm?.enabled === 'true' && !ctx.hasPrometheusOperator && noPrometheus;

  const s = normalized.server?.spec;
  if (s !== undefined && validation.valid.server) {
    take('server', renderServerObjects(id, s, ctx), [
      s.federation !== undefined &&
        s.federation.managedRoute === 'true' &&
        noOpenShift &&
        skipped(
          'OpenShiftObjectsSkipped',
          'RouteAPINotServed',
          'route.openshift.io is not served: no federation Route (expose spire-server port 8443 yourself)',
        ),
      monitorSkipped(s.serviceMonitor),
    ]);
  }
  const a = normalized.agent?.spec;
  if (a !== undefined && validation.valid.agent) {
    // Agents of several servers get an address that resolves to each of them.
    const replicas = s !== undefined && validation.valid.server ? s.replicas : 1;
    const agentCtx = { ...ctx, serverAddress: serverAddressForAgents(ctx, replicas, context.serverAddress !== undefined) };
    take('agent', renderAgentObjects(id, a, agentCtx), [noOpenShift && noScc, monitorSkipped(a.serviceMonitor)]);
  }
  const c = normalized.csi?.spec;
  if (c !== undefined && validation.valid.csi) take('csi', renderCsiObjects(c, ctx), [noOpenShift && noScc]);
  const o = normalized.oidc?.spec;
  if (o !== undefined && validation.valid.oidc) {
    take('oidc', renderOidcObjects(id, o, ctx), [
      // as ZTWIM: RouteAvailable=False/ManagedRouteDisabled (which does not count against Ready)
      !noOpenShift &&
        o.managedRoute === 'false' && {
          type: 'RouteAvailable',
          status: 'False',
          reason: 'ManagedRouteDisabled',
          message: 'managedRoute is "false": the operator manages no Route for the provider',
        },
      noOpenShift &&
        skipped(
          'OpenShiftObjectsSkipped',
          'RouteAPINotServed',
          'route.openshift.io is not served: no Route; without externalSecretRef nor the service CA the provider serves plain HTTP inside the cluster',
        ),
    ]);
  }
  return { objects, conditions, configHashes: hashes, configs, normalized, validation };
}
