// renderOperands: the whole identity plane from its CRs, purely. Normalizes the CRs (either
// shape), validates them (conditions for every invalid field), and renders the objects of each
// valid operand with their labels, owner hints and config hashes. The controllers apply the
// objects and merge the conditions into each CR's status.
import { normalize, type CrSet, type Normalized1_0, type OperandKey } from '../api/normalize.ts';
import { validate, type ConditionInput, type ValidationResult } from '../validate/validate.ts';
import type { PlaneIdentity } from './configs.ts';
import { resolveContext, type RenderContext, type ResolvedContext } from './context.ts';
import { renderAgentObjects } from './agent-objects.ts';
import { renderCsiObjects } from './csi-objects.ts';
import { renderOidcObjects } from './oidc-objects.ts';
import type { RenderedObject } from './objects-common.ts';
import { renderServerObjects } from './server-objects.ts';

export interface RenderResult {
  /** Every object of every valid operand, in apply order (server, agent, CSI, OIDC). */
  readonly objects: readonly RenderedObject[];
  /** Conditions for each operand CR present: ConfigurationValid, TTLConfigurationValid, skip notes. */
  readonly conditions: Readonly<Partial<Record<OperandKey, readonly ConditionInput[]>>>;
  /** Pod-template annotation → SHA-256 of the rendered config. */
  readonly configHashes: Readonly<Record<string, string>>;
  /** The rendered config files, for logs and for checking them with the real binaries. */
  readonly configs: Readonly<Partial<Record<'serverConf' | 'registrarConfig' | 'agentConf' | 'oidcConf', string>>>;
  readonly normalized: Normalized1_0;
  readonly validation: ValidationResult;
}

function skipped(type: string, reason: string, message: string): ConditionInput {
  return { type, status: 'True', reason, message };
}

export function renderOperands(input: CrSet, context: RenderContext): RenderResult {
  const ctx: ResolvedContext = resolveContext(context);
  const normalized = normalize(input);
  const validation = validate(input, normalized, { variant: ctx.variant });
  const conditions: Partial<Record<OperandKey, ConditionInput[]>> = {};
  for (const [k, v] of Object.entries(validation.conditions) as Array<[OperandKey, readonly ConditionInput[]]>) conditions[k] = [...v];
  const objects: RenderedObject[] = [];
  const hashes: Record<string, string> = {};
  const configs: Partial<Record<'serverConf' | 'registrarConfig' | 'agentConf' | 'oidcConf', string>> = {};
  const z = normalized.ztwim?.spec;
  if (z?.trustDomain === undefined || z.clusterName === undefined) {
    return { objects, conditions, configHashes: hashes, configs, normalized, validation };
  }
  const id: PlaneIdentity = { trustDomain: z.trustDomain, clusterName: z.clusterName, bundleConfigMap: z.bundleConfigMap };
  const note = (key: OperandKey, c: ConditionInput): void => {
    (conditions[key] ??= []).push(c);
  };

  const s = normalized.server?.spec;
  if (s !== undefined && validation.valid.server) {
    const r = renderServerObjects(id, s, ctx);
    objects.push(...r.objects);
    Object.assign(hashes, r.configHashes);
    configs.serverConf = r.serverConf;
    configs.registrarConfig = r.registrarConfig;
    if (s.federation !== undefined && s.federation.managedRoute === 'true' && !ctx.hasOpenShiftGroups) {
      note('server', skipped('OpenShiftObjectsSkipped', 'RouteAPINotServed', 'route.openshift.io is not served: no federation Route (expose spire-server port 8443 yourself)'));
    }
    if (s.serviceMonitor?.enabled === 'true' && !ctx.hasPrometheusOperator) note('server', skipped('ServiceMonitorSkipped', 'PrometheusOperatorNotInstalled', 'monitoring.coreos.com is not served: no ServiceMonitor'));
  }
  const a = normalized.agent?.spec;
  if (a !== undefined && validation.valid.agent) {
    const r = renderAgentObjects(id, a, ctx);
    objects.push(...r.objects);
    Object.assign(hashes, r.configHashes);
    configs.agentConf = r.agentConf;
    if (!ctx.hasOpenShiftGroups) note('agent', skipped('OpenShiftObjectsSkipped', 'SecurityContextConstraintsAPINotServed', 'security.openshift.io is not served: no SecurityContextConstraints'));
    if (a.serviceMonitor?.enabled === 'true' && !ctx.hasPrometheusOperator) note('agent', skipped('ServiceMonitorSkipped', 'PrometheusOperatorNotInstalled', 'monitoring.coreos.com is not served: no ServiceMonitor'));
  }
  const c = normalized.csi?.spec;
  if (c !== undefined && validation.valid.csi) {
    objects.push(...renderCsiObjects(c, ctx).objects);
    if (!ctx.hasOpenShiftGroups) note('csi', skipped('OpenShiftObjectsSkipped', 'SecurityContextConstraintsAPINotServed', 'security.openshift.io is not served: no SecurityContextConstraints'));
  }
  const o = normalized.oidc?.spec;
  if (o !== undefined && validation.valid.oidc) {
    const r = renderOidcObjects(id, o, ctx);
    objects.push(...r.objects);
    Object.assign(hashes, r.configHashes);
    configs.oidcConf = r.oidcConf;
    if (!ctx.hasOpenShiftGroups) {
      note('oidc', skipped('OpenShiftObjectsSkipped', 'RouteAPINotServed', 'route.openshift.io is not served: no Route; without externalSecretRef nor the service CA the provider serves plain HTTP inside the cluster'));
    }
    if (o.serviceMonitor?.enabled === 'true' && !ctx.hasPrometheusOperator) note('oidc', skipped('ServiceMonitorSkipped', 'PrometheusOperatorNotInstalled', 'monitoring.coreos.com is not served: no ServiceMonitor'));
  }
  return { objects, conditions, configHashes: hashes, configs, normalized, validation };
}
