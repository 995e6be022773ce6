// Validation of a CR set → conditions (digest §1.6): every invalid field becomes
// ConfigurationValid=False with reason Invalid<Field> and a message naming the field; TTL
// relations give TTLConfigurationValid on the SpireServer. Nothing here throws on a bad CR: an
// operand with problems is simply not rendered.
import { parseDuration } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { KINDS } from '../api/kinds.ts';
import { OPERAND_KINDS, type CrSet, type Normalized1_0, type OperandKey } from '../api/normalize.ts';
import { checkSchema, reasonFor, type FieldProblem } from './schema-check.ts';

export interface ConditionInput {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
}

/** Which operand images the plane runs: ztwim's own, or SPIRE's (a compatibility check). */
export type ImageVariant = 'ztwim' | 'spire';

export interface ValidateOptions {
  readonly variant?: ImageVariant;
}

export interface ValidationResult {
  /** Problems by operand (a ZTWIM problem is listed under every operand present). */
  readonly problems: Readonly<Record<OperandKey, readonly FieldProblem[]>>;
  /** ConfigurationValid (and on the server TTLConfigurationValid) for each operand CR present. */
  readonly conditions: Readonly<Partial<Record<OperandKey, readonly ConditionInput[]>>>;
  /** TTL warnings (TTLConfigurationWarning events). */
  readonly warnings: readonly string[];
  readonly valid: Readonly<Record<OperandKey, boolean>>;
}

const MAX_SVID_TTL_MS = 7 * 24 * 3600_000;
const OPERANDS: readonly OperandKey[] = ['server', 'agent', 'csi', 'oidc'];
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** CommonConfig fields: they go to the pod spec, not into server.conf. */
const POD_SETTINGS = new Set(['labels', 'resources', 'affinity', 'tolerations', 'nodeSelector', 'serviceMonitor']);

/** Every string value below `v` with its field path, skipping the top-level keys in `skip`. */
function stringsIn(v: unknown, at: string, skip: ReadonlySet<string> = new Set()): Array<[string, string]> {
  if (typeof v === 'string') return [[at, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => stringsIn(x, `${at}[${i}]`));
  if (v !== null && typeof v === 'object')
    return Object.entries(v)
      .filter(([k]) => !skip.has(k))
      .flatMap(([k, x]) => stringsIn(x, `${at}.${k}`));
  return [];
}

function problem(kind: string, field: string, message: string, reason = reasonFor(field)): FieldProblem {
  return { kind, field, message: `${kind} ${field}: ${message}`, reason };
}

/** Problems of a jwtIssuer value beyond its pattern: ZTWIM's InvalidJWTIssuerURL rules. */
export function jwtIssuerProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return `"${v}" is not a URL`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `"${v}" must use http or https`;
  if (u.hostname === '') return `"${v}" has no host`;
  if (u.search !== '' || v.includes('?')) return `"${v}" must not have a query`;
  if (u.hash !== '' || v.includes('#')) return `"${v}" must not have a fragment`;
  if (u.username !== '' || u.password !== '') return `"${v}" must not have user information`;
  return undefined;
}

function labelProblems(kind: string, labels: Record<string, string> | undefined): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (!LABEL_KEY.test(k) || k.length > 316) out.push(problem(kind, `spec.labels.${k}`, `"${k}" is not a valid label key`, 'InvalidLabels'));
    else if (!LABEL_VALUE.test(v)) out.push(problem(kind, `spec.labels.${k}`, `"${v}" is not a valid label value`, 'InvalidLabels'));
  }
  return out;
}

/** Validates a CR set; `norm` is normalize(set). */
export function validate(set: CrSet, norm: Normalized1_0, opts: ValidateOptions = {}): ValidationResult {
  const variant = opts.variant ?? 'ztwim';
  const byKind: Record<OperandKey, FieldProblem[]> = { server: [], agent: [], csi: [], oidc: [] };
  const warnings: string[] = [];
  const ttl: FieldProblem[] = [];

  // 1. every field against its schema, on the CRs as written
  const zProblems =
    set.ztwim === undefined ? [] : checkSchema('ZeroTrustWorkloadIdentityManager', KINDS.ZeroTrustWorkloadIdentityManager.spec, set.ztwim.spec ?? {}, 'spec');
  if (set.ztwim !== undefined && set.ztwim.metadata.name !== 'cluster')
    zProblems.push(problem('ZeroTrustWorkloadIdentityManager', 'metadata.name', `must be "cluster", got "${set.ztwim.metadata.name}"`, 'InvalidName'));
  for (const key of OPERANDS) {
    const cr = set[key];
    if (cr === undefined) continue;
    const kind = OPERAND_KINDS[key];
    const d = KINDS[kind];
    if (d.specRequired && cr.spec === undefined) byKind[key].push(problem(kind, 'spec', 'is required', 'InvalidSpec'));
    else byKind[key].push(...checkSchema(kind, d.spec, cr.spec ?? {}, 'spec'));
    if (cr.metadata.name !== 'cluster') byKind[key].push(problem(kind, 'metadata.name', `must be "cluster", got "${cr.metadata.name}"`, 'InvalidName'));
    byKind[key].push(...labelProblems(kind, (cr.spec as { labels?: Record<string, string> } | undefined)?.labels));
  }

  // the rules below read the normalized values, whose types only a clean schema check vouches for
  const typed = { server: byKind.server.length === 0, agent: byKind.agent.length === 0, csi: byKind.csi.length === 0, oidc: byKind.oidc.length === 0 };
  const zTyped = zProblems.length === 0;

  // 2. the identity fields: present, valid, and the 0.2 operand copies in agreement
  const z = zTyped ? norm.ztwim?.spec : undefined;
  const shared: FieldProblem[] = [...zProblems];
  if (norm.ztwim === undefined) {
    shared.push(
      problem(
        'ZeroTrustWorkloadIdentityManager',
        'cluster',
        'not found: create the ZeroTrustWorkloadIdentityManager "cluster" first',
        'ZeroTrustWorkloadIdentityManagerNotFound',
      ),
    );
  } else {
    if (!zTyped) {
      // reported field by field above
    } else if (z?.trustDomain === undefined) shared.push(problem('ZeroTrustWorkloadIdentityManager', 'spec.trustDomain', 'is required'));
    else {
      try {
        TrustDomain.parse(z.trustDomain);
      } catch (e) {
        if (!zProblems.some((p) => p.field === 'spec.trustDomain'))
          shared.push(problem('ZeroTrustWorkloadIdentityManager', 'spec.trustDomain', (e as Error).message));
      }
    }
    if (zTyped && z?.clusterName === undefined) shared.push(problem('ZeroTrustWorkloadIdentityManager', 'spec.clusterName', 'is required'));
  }
  for (const key of ['server', 'agent', 'oidc'] as const) {
    if (!typed[key]) continue;
    const spec = set[key]?.spec as Record<string, unknown> | undefined;
    for (const f of ['trustDomain', 'clusterName', 'bundleConfigMap'] as const) {
      const v = spec?.[f];
      const want = z?.[f];
      if (typeof v === 'string' && want !== undefined && v !== want) {
        byKind[key].push(
          problem(
            OPERAND_KINDS[key],
            `spec.${f}`,
            `"${v}" differs from ZeroTrustWorkloadIdentityManager spec.${f} "${want}" (0.2 shape: remove it from the operand)`,
          ),
        );
      }
    }
  }
  for (const key of OPERANDS) if (set[key] !== undefined) byKind[key].unshift(...shared);

  // 3. SpireServer rules
  const s = typed.server ? norm.server?.spec : undefined;
  if (s !== undefined) {
    const P = (field: string, message: string, reason?: string): void => {
      byKind.server.push(problem('SpireServer', field, message, reason));
    };
    const iss = jwtIssuerProblem(s.jwtIssuer);
    if (iss !== undefined && !byKind.server.some((p) => p.field === 'spec.jwtIssuer')) P('spec.jwtIssuer', iss, 'InvalidJWTIssuerURL');
    // the server reads server.conf with -expandEnv (as ZTWIM runs it): a $ would be replaced
    for (const [field, v] of stringsIn(s, 'spec', POD_SETTINGS)) {
      if (v.includes('$')) P(field, `"${v}" contains "$", which the server would expand as an environment variable (it runs with -expandEnv)`);
    }
    const ms: Record<string, number | undefined> = {};
    for (const f of ['caValidity', 'defaultX509Validity', 'defaultJWTValidity'] as const) {
      const v = parseDuration(s[f]);
      ms[f] = v;
      if (v === undefined) {
        if (!byKind.server.some((p) => p.field === `spec.${f}`)) P(`spec.${f}`, `"${s[f]}" is not a duration (e.g. 24h, 90m, 300s)`);
      } else if (v <= 0) P(`spec.${f}`, 'must be greater than 0');
    }
    const ca = ms['caValidity'];
    if (ca !== undefined && ca > 0) {
      for (const f of ['defaultX509Validity', 'defaultJWTValidity'] as const) {
        const v = ms[f];
        if (v === undefined || v <= 0) continue;
        if (v > ca) ttl.push(problem('SpireServer', `spec.${f}`, `${s[f]} is longer than caValidity ${s.caValidity}`, 'InvalidTTLConfiguration'));
        else if (v > Math.min(ca / 6, MAX_SVID_TTL_MS))
          warnings.push(
            `SpireServer spec.${f} ${s[f]}: SVIDs are only guaranteed up to min(caValidity/6, 7d) = ${Math.round(Math.min(ca / 6, MAX_SVID_TTL_MS) / 60_000)}m`,
          );
      }
    }
    if (s.keyManager.diskEnabled === 'false' && s.keyManager.memoryEnabled === 'false')
      P('spec.keyManager', 'at least one of diskEnabled and memoryEnabled must be "true"');
    const ds = s.datastore;
    if (variant === 'ztwim' && ds.databaseType !== 'sqlite3' && ds.databaseType !== 'postgres') {
      P('spec.datastore.databaseType', `"${ds.databaseType}" is not supported by ztwim server (use sqlite3 or postgres)`, 'InvalidDatastore');
    }
    if (ds.databaseType !== 'sqlite3' && ds.connectionStringSecretRef === undefined && ds.connectionString === '/run/spire/data/datastore.sqlite3') {
      P('spec.datastore.connectionString', `databaseType ${ds.databaseType} needs a connection string or connectionStringSecretRef`, 'InvalidDatastore');
    }
    if (s.replicas > 1 && (ds.databaseType === 'sqlite3' || s.persistence.type !== undefined)) {
      P('spec.replicas', `${s.replicas} replicas need a shared SQL datastore (postgres), not ${ds.databaseType} on a per-pod volume`);
    }
    const fed = s.federation;
    if (fed !== undefined) {
      const be = fed.bundleEndpoint;
      if (be.profile === 'https_web' && be.httpsWeb === undefined) P('spec.federation.bundleEndpoint.httpsWeb', 'is required when profile is https_web');
      if (be.httpsWeb !== undefined && (be.httpsWeb.acme === undefined) === (be.httpsWeb.servingCert === undefined))
        P('spec.federation.bundleEndpoint.httpsWeb', 'exactly one of acme and servingCert must be set');
      const seen = new Set<string>();
      (fed.federatesWith ?? []).forEach((f, i) => {
        const at = `spec.federation.federatesWith[${i}]`;
        if (z?.trustDomain !== undefined && f.trustDomain === z.trustDomain) P(`${at}.trustDomain`, `"${f.trustDomain}" is this cluster's own trust domain`);
        if (seen.has(f.trustDomain)) P(`${at}.trustDomain`, `"${f.trustDomain}" is listed twice`);
        seen.add(f.trustDomain);
        if (f.bundleEndpointProfile === 'https_spiffe') {
          if (f.endpointSpiffeId === undefined) P(`${at}.endpointSpiffeId`, 'is required for https_spiffe');
          else {
            try {
              SpiffeId.parse(f.endpointSpiffeId);
            } catch (e) {
              P(`${at}.endpointSpiffeId`, (e as Error).message);
            }
          }
        }
      });
    }
  }

  // 4. SpireAgent, SpiffeCSIDriver, OIDC rules
  const a = typed.agent ? norm.agent?.spec : undefined;
  const c = typed.csi ? norm.csi?.spec : undefined;
  const o = typed.oidc ? norm.oidc?.spec : undefined;
  const v = a?.workloadAttestors?.workloadAttestorsVerification;
  if (v?.type === 'hostCert' && (v.hostCertBasePath === undefined || v.hostCertFileName === undefined)) {
    byKind.agent.push(problem('SpireAgent', 'spec.workloadAttestors.workloadAttestorsVerification', 'hostCert requires hostCertBasePath and hostCertFileName'));
  }
  if (a !== undefined && c !== undefined && a.socketPath !== c.agentSocketPath) {
    byKind.agent.push(problem('SpireAgent', 'spec.socketPath', `"${a.socketPath}" differs from SpiffeCSIDriver spec.agentSocketPath "${c.agentSocketPath}"`));
    byKind.csi.push(problem('SpiffeCSIDriver', 'spec.agentSocketPath', `"${c.agentSocketPath}" differs from SpireAgent spec.socketPath "${a.socketPath}"`));
  }
  if (o !== undefined) {
    const iss = jwtIssuerProblem(o.jwtIssuer);
    if (iss !== undefined && !byKind.oidc.some((p) => p.field === 'spec.jwtIssuer'))
      byKind.oidc.push(problem('SpireOIDCDiscoveryProvider', 'spec.jwtIssuer', iss, 'InvalidJWTIssuerURL'));
    if (c !== undefined && o.csiDriverName !== c.pluginName) {
      byKind.oidc.push(
        problem('SpireOIDCDiscoveryProvider', 'spec.csiDriverName', `"${o.csiDriverName}" differs from SpiffeCSIDriver spec.pluginName "${c.pluginName}"`),
      );
    }
  }

  const conditions: Partial<Record<OperandKey, ConditionInput[]>> = {};
  const valid = { server: false, agent: false, csi: false, oidc: false };
  for (const key of OPERANDS) {
    if (set[key] === undefined) continue;
    const ps = byKind[key];
    const first = ps[0];
    const list: ConditionInput[] = [
      first === undefined
        ? { type: 'ConfigurationValid', status: 'True', reason: 'ConfigurationValid', message: 'The configuration is valid' }
        : { type: 'ConfigurationValid', status: 'False', reason: first.reason, message: ps.map((p) => p.message).join('; ') },
    ];
    if (key === 'server') {
      const t = ttl[0];
      list.push(
        t === undefined
          ? warnings.length > 0
            ? { type: 'TTLConfigurationValid', status: 'True', reason: 'TTLConfigurationWarning', message: warnings.join('; ') }
            : { type: 'TTLConfigurationValid', status: 'True', reason: 'TTLConfigurationValid', message: 'The TTL configuration is valid' }
          : { type: 'TTLConfigurationValid', status: 'False', reason: t.reason, message: ttl.map((p) => p.message).join('; ') },
      );
    }
    conditions[key] = list;
    valid[key] = ps.length === 0 && (key !== 'server' || ttl.length === 0);
  }
  return { problems: byKind, conditions, warnings, valid };
}
