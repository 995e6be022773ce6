// The 0.2 → 1.0 conversion (digest §1.7) plus the API server's defaulting: a CR set as the user
// wrote it, in either shape, becomes one 1.0-shaped, defaulted set the renderers read.
//
//   0.2 field                                   1.0 place
//   SpireServer/SpireAgent/OIDC .trustDomain → ZeroTrustWorkloadIdentityManager spec.trustDomain
//   SpireServer/SpireAgent .clusterName      → ZeroTrustWorkloadIdentityManager spec.clusterName
//   SpireServer/SpireAgent .bundleConfigMap  → ZeroTrustWorkloadIdentityManager spec.bundleConfigMap
//   SpiffeCSIDriver agentSocketPath ".../x.sock" → its directory
//   SpireServer persistence.type pvc         → (dropped: 1.0 always uses a PVC)
//   SpireServer persistence.type hostPath|emptyDir → kept: the data volume is rendered as such
//   datastore options/rootCAPath/client*Path, OIDC agentSocketName, ZTWIM logLevel/namespace
//                                             → dropped, each with a note
// The ZTWIM values win over an operand's copy; operands whose copies disagree with the result are
// reported by validate() (InvalidTrustDomain / InvalidClusterName / InvalidBundleConfigMap).
import { applyDefaults, type Resolved } from './schema.ts';
import {
  spiffeCsiDriverSpec,
  spireAgentSpec,
  spireOidcSpec,
  spireServerSpec,
  ztwimSpec,
  type ObjectMeta,
  type SpiffeCSIDriver,
  type SpireAgent,
  type SpireOIDCDiscoveryProvider,
  type SpireServer,
  type ZeroTrustWorkloadIdentityManager,
} from './kinds.ts';

/** The CRs of one identity plane as read from the API server (any may be absent). */
export interface CrSet {
  readonly ztwim?: ZeroTrustWorkloadIdentityManager;
  readonly server?: SpireServer;
  readonly agent?: SpireAgent;
  readonly csi?: SpiffeCSIDriver;
  readonly oidc?: SpireOIDCDiscoveryProvider;
}

export type OperandKey = 'server' | 'agent' | 'csi' | 'oidc';
export const OPERAND_KINDS = {
  server: 'SpireServer',
  agent: 'SpireAgent',
  csi: 'SpiffeCSIDriver',
  oidc: 'SpireOIDCDiscoveryProvider',
} as const satisfies Record<OperandKey, string>;

export type ZtwimSpec1_0 = Resolved<typeof ztwimSpec>;
export type ServerSpec1_0 = Resolved<typeof spireServerSpec>;
export type AgentSpec1_0 = Resolved<typeof spireAgentSpec>;
export type CsiSpec1_0 = Resolved<typeof spiffeCsiDriverSpec>;
export type OidcSpec1_0 = Resolved<typeof spireOidcSpec>;

export interface NormalizedCr<S> {
  readonly metadata: ObjectMeta;
  readonly spec: S;
}

/** One field of the 0.2 shape and what became of it. */
export interface ConversionNote {
  readonly kind: string;
  readonly field: string;
  readonly message: string;
}

/** A CR set in the 1.0 shape, defaults applied. */
export interface Normalized1_0 {
  /** '0.2' when any 0.2-only field was present. */
  readonly shape: '0.2' | '1.0';
  /** Absent when no ZeroTrustWorkloadIdentityManager exists (every operand then fails). */
  readonly ztwim?: NormalizedCr<ZtwimSpec1_0>;
  readonly server?: NormalizedCr<ServerSpec1_0>;
  readonly agent?: NormalizedCr<AgentSpec1_0>;
  readonly csi?: NormalizedCr<CsiSpec1_0>;
  readonly oidc?: NormalizedCr<OidcSpec1_0>;
  readonly conversions: readonly ConversionNote[];
}

const SOCKET_FILE = /\/[^/]+\.sock$/;

/** Converts a CR set of either shape to the 1.0 shape and applies the CRD defaults. Never throws. */
export function normalize(set: CrSet): Normalized1_0 {
  const notes: ConversionNote[] = [];
  const note = (kind: string, field: string, message: string): void => {
    notes.push({ kind, field, message });
  };
  const spec = (cr: { spec?: unknown } | undefined): Record<string, unknown> => ({ ...((cr?.spec ?? {}) as Record<string, unknown>) });

  const z = spec(set.ztwim);
  const server = spec(set.server);
  const agent = spec(set.agent);
  const csi = spec(set.csi);
  const oidc = spec(set.oidc);

  // trustDomain / clusterName / bundleConfigMap: the ZTWIM value, else the first operand copy
  const lift = (field: 'trustDomain' | 'clusterName' | 'bundleConfigMap', from: Array<[string, Record<string, unknown>]>): void => {
    for (const [kind, s] of from) {
      const v = s[field];
      if (typeof v !== 'string') continue;
      const current = z[field];
      const zSet = typeof current === 'string' && !(field === 'bundleConfigMap' && current === 'spire-bundle');
      if (!zSet) {
        z[field] = v;
        note(kind, `spec.${field}`, `0.2 shape: ${kind} spec.${field} "${v}" used as ZeroTrustWorkloadIdentityManager spec.${field}`);
      } else if (current === v)
        note(kind, `spec.${field}`, `0.2 shape: ${kind} spec.${field} equals ZeroTrustWorkloadIdentityManager spec.${field}; the 1.0 place is used`);
      // a differing copy is left for validate() to report
    }
  };
  const servers: Array<[string, Record<string, unknown>]> = set.server === undefined ? [] : [['SpireServer', server]];
  const agents: Array<[string, Record<string, unknown>]> = set.agent === undefined ? [] : [['SpireAgent', agent]];
  const oidcs: Array<[string, Record<string, unknown>]> = set.oidc === undefined ? [] : [['SpireOIDCDiscoveryProvider', oidc]];
  lift('trustDomain', [...servers, ...agents, ...oidcs]);
  lift('clusterName', [...servers, ...agents]);
  lift('bundleConfigMap', [...servers, ...agents]);

  for (const k of ['logLevel', 'namespace'] as const) {
    if (z[k] !== undefined) note('ZeroTrustWorkloadIdentityManager', `spec.${k}`, `0.2 shape: spec.${k} is accepted and not used`);
    delete z[k];
  }
  // operand copies of the ZTWIM fields leave the 1.0 shape (validate() compares them first)
  const stripIdentity = (s: Record<string, unknown>): void => {
    delete s['trustDomain'];
    delete s['clusterName'];
    delete s['bundleConfigMap'];
  };

  let shape: '0.2' | '1.0' = notes.length > 0 ? '0.2' : '1.0';

  if (set.server !== undefined) {
    const p = server['persistence'];
    if (p !== null && typeof p === 'object') {
      const pers = { ...(p as Record<string, unknown>) };
      if (pers['type'] === 'pvc') {
        delete pers['type'];
        note('SpireServer', 'spec.persistence.type', '0.2 shape: persistence.type pvc is what 1.0 does');
      } else if (pers['type'] !== undefined)
        note(
          'SpireServer',
          'spec.persistence.type',
          `0.2 shape: persistence.type ${String(pers['type'])} is kept: the data volume is a ${String(pers['type'])}`,
        );
      server['persistence'] = pers;
    }
    const d = server['datastore'];
    if (d !== null && typeof d === 'object') {
      const ds = { ...(d as Record<string, unknown>) };
      for (const k of ['options', 'rootCAPath', 'clientCertPath', 'clientKeyPath']) {
        if (ds[k] !== undefined) note('SpireServer', `spec.datastore.${k}`, `0.2 shape: datastore.${k} is accepted and not used (1.0: tlsSecretName)`);
        delete ds[k];
      }
      server['datastore'] = ds;
    }
  }
  if (set.csi !== undefined && typeof csi['agentSocketPath'] === 'string' && SOCKET_FILE.test(csi['agentSocketPath'])) {
    const dir = csi['agentSocketPath'].replace(SOCKET_FILE, '') || '/';
    note('SpiffeCSIDriver', 'spec.agentSocketPath', `0.2 shape: agentSocketPath names the socket file; its directory ${dir} is used`);
    csi['agentSocketPath'] = dir;
  }
  if (set.oidc !== undefined && oidc['agentSocketName'] !== undefined) {
    note('SpireOIDCDiscoveryProvider', 'spec.agentSocketName', '0.2 shape: agentSocketName is accepted and not used (the socket is spire-agent.sock)');
    delete oidc['agentSocketName'];
  }
  if (notes.length > 0) shape = '0.2';
  stripIdentity(server);
  stripIdentity(agent);
  delete oidc['trustDomain'];

  const out = <S>(
    cr: { metadata: ObjectMeta } | undefined,
    schema: Parameters<typeof applyDefaults>[0],
    s: Record<string, unknown>,
  ): NormalizedCr<S> | undefined => (cr === undefined ? undefined : { metadata: cr.metadata, spec: applyDefaults(schema, s) as S });

  // 0.2: the operator created the ZTWIM CR itself; its fields then come from the operands
  let ztwimCr: { metadata: ObjectMeta } | undefined = set.ztwim;
  if (ztwimCr === undefined && typeof z['trustDomain'] === 'string') {
    ztwimCr = { metadata: { name: 'cluster' } };
    note('ZeroTrustWorkloadIdentityManager', 'metadata', '0.2 shape: no ZeroTrustWorkloadIdentityManager; its fields come from the operands');
    shape = '0.2';
  }
  const ztwim = out<ZtwimSpec1_0>(ztwimCr, ztwimSpec, z);
  const srv = out<ServerSpec1_0>(set.server, spireServerSpec, server);
  const agt = out<AgentSpec1_0>(set.agent, spireAgentSpec, agent);
  const drv = out<CsiSpec1_0>(set.csi, spiffeCsiDriverSpec, csi);
  const odp = out<OidcSpec1_0>(set.oidc, spireOidcSpec, oidc);
  return {
    shape,
    ...(ztwim === undefined ? {} : { ztwim }),
    ...(srv === undefined ? {} : { server: srv }),
    ...(agt === undefined ? {} : { agent: agt }),
    ...(drv === undefined ? {} : { csi: drv }),
    ...(odp === undefined ? {} : { oidc: odp }),
    conversions: notes,
  };
}

const KIND_KEYS: Readonly<Record<string, keyof CrSet>> = {
  ZeroTrustWorkloadIdentityManager: 'ztwim',
  SpireServer: 'server',
  SpireAgent: 'agent',
  SpiffeCSIDriver: 'csi',
  SpireOIDCDiscoveryProvider: 'oidc',
};

/** A CrSet from a list of objects (a parsed multi-document YAML, a list response); other kinds are ignored. */
export function crSetFromObjects(objects: readonly unknown[]): CrSet {
  const out: Record<string, unknown> = {};
  for (const o of objects) {
    if (o === null || typeof o !== 'object') continue;
    const key = KIND_KEYS[String((o as { kind?: unknown }).kind)];
    if (key !== undefined) out[key] = o;
  }
  return out as CrSet;
}
