// The five kinds of operator.openshift.io/v1alpha1, as one typed source of truth (schema.ts): the
// TS types below, the CRDs in deploy/operator/crds/ (crd.ts, scripts/gen-operator-crds.mjs) and
// the operator's field checks (validate/) all come from these descriptions.
//
// Both shapes are accepted (digest §1.7): the 1.0 fields, plus the 0.2 fields of Red Hat's
// documentation marked `deprecated` (trustDomain/clusterName/bundleConfigMap on each operand,
// persistence.type/hostPath, datastore options and TLS paths, ZTWIM logLevel 1–5 and namespace).
// normalize.ts maps a 0.2 CR set onto the 1.0 shape. Fields marked "lift" go beyond ZTWIM 1.0
// (digest §8).
import { arr, int, map, obj, oneOf, raw, str, toggle, type CelRule, type Infer, type ObjectSchema } from './schema.ts';

export const GROUP = 'operator.openshift.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The one name each singleton may have (CEL `self.metadata.name == 'cluster'`). */
export const SINGLETON_NAME = 'cluster';

export const TRUST_DOMAIN_PATTERN = '^[a-z0-9]([a-z0-9\\-\\.]*[a-z0-9])?$';
export const DNS1123_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const JWT_ISSUER_PATTERN = '^(?i)https?://[^\\s?#]+$';
export const SOCKET_DIR_PATTERN = '^/[a-zA-Z0-9._/\\-]*$';
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$';
export const SIZE_PATTERN = '^[1-9][0-9]*Gi$';

const immutable = true;

// ---- shared pieces ----

const logLevel = oneOf(['debug', 'info', 'warn', 'error'] as const, { default: 'info', description: 'Log level of the operand.' });
const logFormat = oneOf(['text', 'json'] as const, { default: 'text', description: 'Log format of the operand.' });
const keyType = (description: string) => oneOf(['rsa-2048', 'rsa-4096', 'ec-p256', 'ec-p384'] as const, { description });
const duration = (dflt: string, description: string) => str({ default: dflt, pattern: DURATION_PATTERN, format: 'duration', description });

/** CommonConfig (digest §1.0): on every operand (and on the 0.2 ZTWIM). */
const commonConfig = {
  labels: map({ maxProperties: 64, description: 'Labels added to every object generated for this operand (the standard app.kubernetes.io labels win).' }),
  resources: raw({ description: 'Compute resources (core/v1 ResourceRequirements) of the operand containers.' }),
  affinity: raw({ description: 'Pod affinity (core/v1 Affinity).' }),
  tolerations: arr(raw({ description: 'A core/v1 Toleration.' }), { maxItems: 50, description: 'Pod tolerations.' }),
  nodeSelector: map({ maxProperties: 50, description: 'Pod node selector.' }),
} as const;

const serviceMonitor = obj(
  {
    enabled: toggle('false', { description: 'Create a monitoring.coreos.com/v1 ServiceMonitor for the metrics port (needs the Prometheus operator CRDs).' }),
    interval: duration('30s', 'Scrape interval.'),
  },
  { description: 'lift: a managed ServiceMonitor for this operand (ZTWIM 1.0 creates none).' },
);

/** The 0.2 shape's per-operand copies of the ZTWIM fields (1.0: on ZTWIM only). */
const legacyIdentity = {
  trustDomain: str({
    maxLength: 255,
    pattern: TRUST_DOMAIN_PATTERN,
    description: '0.2 shape: the trust domain (1.0: ZeroTrustWorkloadIdentityManager spec.trustDomain).',
    deprecated: 'spec.trustDomain of the ZeroTrustWorkloadIdentityManager',
  }),
  clusterName: str({
    maxLength: 63,
    pattern: DNS1123_SUBDOMAIN_PATTERN,
    description: '0.2 shape: the cluster name (1.0: ZeroTrustWorkloadIdentityManager spec.clusterName).',
    deprecated: 'spec.clusterName of the ZeroTrustWorkloadIdentityManager',
  }),
  bundleConfigMap: str({
    maxLength: 253,
    pattern: DNS1123_SUBDOMAIN_PATTERN,
    description: '0.2 shape: the bundle ConfigMap (1.0: ZeroTrustWorkloadIdentityManager spec.bundleConfigMap).',
    deprecated: 'spec.bundleConfigMap of the ZeroTrustWorkloadIdentityManager',
  }),
} as const;

// ---- ZeroTrustWorkloadIdentityManager ----

export const ztwimSpec = obj(
  {
    trustDomain: str({
      maxLength: 255,
      pattern: TRUST_DOMAIN_PATTERN,
      immutable,
      description: 'The SPIFFE trust domain of every operand. Immutable. Required unless the 0.2 shape sets it on the operands.',
    }),
    clusterName: str({
      maxLength: 63,
      pattern: DNS1123_SUBDOMAIN_PATTERN,
      immutable,
      description: 'The cluster name (k8s_psat cluster, registrar clusterName). Immutable.',
    }),
    bundleConfigMap: str({
      maxLength: 253,
      pattern: DNS1123_SUBDOMAIN_PATTERN,
      default: 'spire-bundle',
      immutable,
      description: 'ConfigMap the server writes its trust bundle to (key bundle.crt). Immutable.',
    }),
    logLevel: int({
      minimum: 1,
      maximum: 5,
      description: '0.2 shape: the operator log verbosity; accepted and not used.',
      deprecated: 'logLevel of each operand',
    }),
    namespace: str({
      maxLength: 63,
      description: '0.2 shape: the operand namespace; accepted and not used (the operator uses OPERATOR_NAMESPACE).',
      deprecated: 'the OPERATOR_NAMESPACE of the operator',
    }),
    ...commonConfig,
  },
  {
    description: 'The identity plane: trust domain, cluster name and bundle ConfigMap shared by all operands.',
    cel: [
      { rule: '!has(oldSelf.trustDomain) || has(self.trustDomain)', message: 'trustDomain cannot be removed once set', fieldPath: '.trustDomain' },
      { rule: '!has(oldSelf.clusterName) || has(self.clusterName)', message: 'clusterName cannot be removed once set', fieldPath: '.clusterName' },
    ],
  },
);

// ---- SpireServer ----

const acme = obj(
  {
    directoryUrl: str({ required: true, pattern: '^https://', maxLength: 512, description: 'ACME directory URL.' }),
    domainName: str({ required: true, pattern: DNS1123_SUBDOMAIN_PATTERN, maxLength: 253, description: 'Domain the certificate is issued for.' }),
    email: str({ required: true, maxLength: 254, description: 'ACME account e-mail.' }),
    tosAccepted: toggle('false', { description: 'Accept the ACME terms of service.' }),
  },
  { description: 'https_web with an ACME certificate.' },
);

const servingCert = obj(
  {
    fileSyncInterval: int({ minimum: 60, maximum: 7776000, default: 86400, description: 'Seconds between re-reads of the serving certificate files.' }),
    externalSecretRef: str({
      maxLength: 253,
      pattern: DNS1123_SUBDOMAIN_PATTERN,
      description: 'TLS Secret with the serving certificate (default: the service-CA Secret spire-server-serving-cert).',
    }),
  },
  { description: 'https_web with a certificate from a Secret.' },
);

const federation = obj(
  {
    bundleEndpoint: obj(
      {
        profile: oneOf(['https_spiffe', 'https_web'] as const, { default: 'https_spiffe', immutable, description: 'Bundle endpoint profile. Immutable.' }),
        refreshHint: int({ minimum: 60, maximum: 3600, default: 300, description: 'Seconds: the refresh hint served with the bundle.' }),
        httpsWeb: obj(
          { acme, servingCert },
          {
            description: 'Required for https_web: exactly one of acme and servingCert.',
            cel: [
              { rule: 'has(self.acme) != has(self.servingCert)', message: 'exactly one of acme and servingCert must be set' },
              { rule: 'has(self.acme) == has(oldSelf.acme)', message: 'switching between acme and servingCert is not allowed' },
            ],
          },
        ),
      },
      {
        defaultEmpty: true,
        description: "The server's own bundle endpoint (port 8443).",
        cel: [
          {
            rule: "!has(self.profile) || self.profile != 'https_web' || has(self.httpsWeb)",
            message: 'httpsWeb is required when profile is https_web',
            fieldPath: '.httpsWeb',
          },
        ],
      },
    ),
    federatesWith: arr(
      obj(
        {
          trustDomain: str({ required: true, maxLength: 255, pattern: TRUST_DOMAIN_PATTERN, description: 'The foreign trust domain.' }),
          bundleEndpointUrl: str({ required: true, maxLength: 512, pattern: '^https://[^\\s]+$', description: 'Its bundle endpoint (https).' }),
          bundleEndpointProfile: oneOf(['https_spiffe', 'https_web'] as const, { required: true, description: 'Its bundle endpoint profile.' }),
          endpointSpiffeId: str({
            maxLength: 2048,
            pattern: '^spiffe://',
            description: 'SPIFFE ID of the bundle endpoint server (required for https_spiffe).',
          }),
        },
        {
          description: 'A trust domain this server federates with.',
          cel: [
            {
              rule: "self.bundleEndpointProfile != 'https_spiffe' || has(self.endpointSpiffeId)",
              message: 'endpointSpiffeId is required for https_spiffe',
              fieldPath: '.endpointSpiffeId',
            },
          ],
        },
      ),
      { minItems: 1, maxItems: 50, listMapKeys: ['trustDomain'], description: 'Trust domains to federate with (no duplicates).' },
    ),
    managedRoute: toggle('true', { description: 'Manage the OpenShift Route of the federation endpoint.' }),
    routeHost: str({
      maxLength: 253,
      pattern: DNS1123_SUBDOMAIN_PATTERN,
      description: 'lift: host of the federation Route (default federation.<trustDomain>).',
    }),
  },
  { description: "Federation: the server's bundle endpoint and the trust domains it federates with. Cannot be removed once set." },
);

export const spireServerSpec = obj(
  {
    ...legacyIdentity,
    logLevel,
    logFormat,
    jwtIssuer: str({
      required: true,
      maxLength: 512,
      pattern: JWT_ISSUER_PATTERN,
      description: 'Issuer (iss) of JWT-SVIDs: an http(s) URL with a host and no query or fragment.',
    }),
    caValidity: duration('24h', 'CA certificate lifetime (ca_ttl).'),
    defaultX509Validity: duration('1h', 'Default X509-SVID lifetime.'),
    defaultJWTValidity: duration('5m', 'Default JWT-SVID lifetime.'),
    caKeyType: { ...keyType('CA key type.'), default: 'rsa-2048' as const },
    jwtKeyType: keyType('JWT signing key type (rendered only when set; the server then defaults to caKeyType).'),
    keyManager: obj(
      {
        diskEnabled: toggle('true', { description: 'Keep the CA keys on the data volume (KeyManager disk).' }),
        memoryEnabled: toggle('false', { description: 'lift: honoured: "true" with diskEnabled "false" keeps the keys in memory only.' }),
      },
      { defaultEmpty: true, description: 'Where the server keeps its CA keys.' },
    ),
    caSubject: obj(
      {
        country: str({ maxLength: 2, description: 'Country (two letters).' }),
        organization: str({ maxLength: 64, description: 'Organization.' }),
        commonName: str({ maxLength: 255, description: 'Common name.' }),
      },
      { required: true, description: 'Subject of the CA certificate.' },
    ),
    persistence: obj(
      {
        size: str({ pattern: SIZE_PATTERN, default: '1Gi', immutable, description: 'Size of the data volume. Immutable.' }),
        accessMode: oneOf(['ReadWriteOnce', 'ReadWriteOncePod', 'ReadWriteMany'] as const, {
          default: 'ReadWriteOnce',
          immutable,
          description: 'Access mode of the data volume. Immutable.',
        }),
        storageClass: str({ maxLength: 253, default: '', immutable, description: 'Storage class ("" = the cluster default). Immutable.' }),
        type: oneOf(['pvc', 'hostPath', 'emptyDir'] as const, {
          description: '0.2 shape: the volume type. pvc is what 1.0 does; hostPath and emptyDir are rendered as such.',
          deprecated: 'a PVC (1.0 always uses one)',
        }),
        hostPath: str({
          maxLength: 4096,
          pattern: SOCKET_DIR_PATTERN,
          description: '0.2 shape: host directory for type hostPath.',
          deprecated: 'a PVC (1.0 always uses one)',
        }),
      },
      { defaultEmpty: true, description: 'The server data volume (datastore and keys).' },
    ),
    datastore: obj(
      {
        databaseType: oneOf(['sql', 'sqlite3', 'postgres', 'mysql', 'aws_postgresql', 'aws_mysql'] as const, {
          default: 'sqlite3',
          description: 'Database type (ztwim server: sqlite3 or postgres).',
        }),
        connectionString: str({
          maxLength: 2048,
          default: '/run/spire/data/datastore.sqlite3',
          description: 'Connection string (SQLite: file path). Prefer connectionStringSecretRef for credentials.',
        }),
        connectionStringSecretRef: obj(
          {
            name: str({ required: true, maxLength: 253, pattern: DNS1123_SUBDOMAIN_PATTERN, description: 'Secret in the operand namespace.' }),
            key: str({ maxLength: 253, default: 'connectionString', description: 'Key of the Secret that holds the connection string.' }),
          },
          {
            description:
              'lift: the connection string from a Secret (passed to the server as an environment variable, never written to the ConfigMap). Wins over connectionString.',
          },
        ),
        tlsSecretName: str({
          maxLength: 253,
          pattern: DNS1123_SUBDOMAIN_PATTERN,
          description: 'Secret with the database client TLS files, mounted at /run/spire/db/certs.',
        }),
        maxOpenConns: int({ minimum: 1, maximum: 10000, default: 100, description: 'Maximum open connections.' }),
        maxIdleConns: int({ minimum: 0, maximum: 10000, default: 2, description: 'Maximum idle connections.' }),
        connMaxLifetime: int({ minimum: 0, default: 0, description: 'Seconds a connection may be reused (0: unlimited).' }),
        disableMigration: toggle('false', { description: 'Do not migrate the schema at start.' }),
        options: arr(str({ maxLength: 1024, description: 'A driver option.' }), {
          maxItems: 50,
          description: '0.2 shape: driver options; accepted and not used.',
          deprecated: 'connectionString',
        }),
        rootCAPath: str({ maxLength: 4096, description: '0.2 shape: database root CA path.', deprecated: 'tlsSecretName' }),
        clientCertPath: str({ maxLength: 4096, description: '0.2 shape: database client certificate path.', deprecated: 'tlsSecretName' }),
        clientKeyPath: str({ maxLength: 4096, description: '0.2 shape: database client key path.', deprecated: 'tlsSecretName' }),
      },
      { defaultEmpty: true, description: 'The server datastore.' },
    ),
    federation,
    replicas: int({
      minimum: 1,
      maximum: 5,
      default: 1,
      description:
        'lift: server replicas. More than one needs a shared postgres datastore; agents then reach every server through the spire-server-headless Service and fail over between them.',
    }),
    serviceMonitor,
    ...commonConfig,
  },
  {
    description: 'The SPIRE-compatible server, its registrar (controller manager) and their objects.',
    cel: [{ rule: '!has(oldSelf.federation) || has(self.federation)', message: 'federation cannot be removed once set', fieldPath: '.federation' }],
  },
);

// ---- SpireAgent ----

export const spireAgentSpec = obj(
  {
    ...legacyIdentity,
    socketPath: str({
      maxLength: 4096,
      pattern: SOCKET_DIR_PATTERN,
      default: '/run/spire/agent-sockets',
      description: 'Host directory of the Workload API socket (spire-agent.sock). Must equal the SpiffeCSIDriver agentSocketPath.',
    }),
    logLevel,
    logFormat,
    nodeAttestor: obj(
      { k8sPSATEnabled: toggle('true', { description: 'Attest the agent with k8s_psat.' }) },
      { description: 'Node attestation (absent: none rendered).' },
    ),
    workloadAttestors: obj(
      {
        k8sEnabled: toggle('true', { description: 'Attest workloads with the k8s workload attestor.' }),
        disableContainerSelectors: toggle('false', { description: 'Leave out container-name and container-image selectors.' }),
        useNewContainerLocator: toggle('true', { description: 'Locate containers through mountinfo first.' }),
        workloadAttestorsVerification: obj(
          {
            type: oneOf(['auto', 'hostCert', 'apiServerCA', 'skip'] as const, {
              default: 'auto',
              description: 'How the agent verifies the kubelet certificate (apiServerCA: lift).',
            }),
            hostCertBasePath: str({ maxLength: 4096, pattern: SOCKET_DIR_PATTERN, description: 'Host directory of the kubelet CA.' }),
            hostCertFileName: str({ maxLength: 255, pattern: '^[a-zA-Z0-9._\\-]+$', description: 'File name of the kubelet CA in that directory.' }),
          },
          {
            description: 'Kubelet certificate verification.',
            cel: [
              {
                rule: "self.type != 'hostCert' || (has(self.hostCertBasePath) && has(self.hostCertFileName))",
                message: 'hostCert requires hostCertBasePath and hostCertFileName',
              },
            ],
          },
        ),
      },
      { description: 'Workload attestation (absent: no k8s attestor rendered).' },
    ),
    serviceMonitor,
    ...commonConfig,
  },
  { description: 'The agent DaemonSet and its objects.' },
);

// ---- SpiffeCSIDriver ----

export const spiffeCsiDriverSpec = obj(
  {
    agentSocketPath: str({
      maxLength: 4096,
      pattern: SOCKET_DIR_PATTERN,
      default: '/run/spire/agent-sockets',
      description: 'Host directory of the agent socket (0.2: the socket file; its directory is used).',
    }),
    pluginName: str({
      maxLength: 253,
      pattern: DNS1123_SUBDOMAIN_PATTERN,
      default: 'csi.spiffe.io',
      description: 'CSI plugin name: the CSIDriver object and kubelet plugin directory.',
    }),
    logLevel: { ...logLevel, description: 'lift: log level of the driver.' },
    logFormat,
    ...commonConfig,
  },
  { description: 'The SPIFFE CSI driver DaemonSet and CSIDriver object.' },
);

// ---- SpireOIDCDiscoveryProvider ----

export const spireOidcSpec = obj(
  {
    trustDomain: legacyIdentity.trustDomain,
    agentSocketName: str({
      maxLength: 255,
      description: '0.2 shape: agent socket file name; accepted, spire-agent.sock is used.',
      deprecated: 'csiDriverName',
    }),
    jwtIssuer: str({
      required: true,
      maxLength: 512,
      pattern: JWT_ISSUER_PATTERN,
      description: 'Issuer URL; its host and path become the Route host and an allowed domain.',
    }),
    csiDriverName: str({
      maxLength: 253,
      pattern: DNS1123_SUBDOMAIN_PATTERN,
      default: 'csi.spiffe.io',
      description: 'CSI driver that mounts the Workload API (must equal SpiffeCSIDriver pluginName).',
    }),
    replicaCount: int({ minimum: 1, maximum: 5, default: 1, description: 'Replicas of the provider Deployment.' }),
    managedRoute: toggle('true', { description: '"false": no managed Route; one the operator made before is deleted (ZTWIM 1.0 leaves it in place).' }),
    externalSecretRef: str({ maxLength: 253, pattern: DNS1123_SUBDOMAIN_PATTERN, description: 'TLS Secret for the Route (tls.externalCertificate).' }),
    setKeyUse: toggle('false', { description: 'lift: publish use "sig" on each JWKS key (Entra needs it).' }),
    logLevel,
    logFormat,
    ...commonConfig,
  },
  { description: 'The OIDC discovery provider Deployment and its objects.' },
);

// ---- status ----

const condition = obj(
  {
    type: str({ required: true, maxLength: 316, description: 'Condition type.' }),
    status: oneOf(['True', 'False', 'Unknown'] as const, { required: true, description: 'Condition status.' }),
    reason: str({ required: true, maxLength: 1024, description: 'Machine-readable reason.' }),
    message: str({ required: true, maxLength: 32768, description: 'Human-readable message.' }),
    lastTransitionTime: str({ required: true, description: 'RFC 3339 time of the last status change.' }),
    observedGeneration: int({ minimum: 0, description: 'Generation the condition was set for.' }),
  },
  { description: 'A metav1.Condition.' },
);
const conditions = arr(condition, { maxItems: 64, listMapKeys: ['type'], description: 'Conditions (§1.6).' });

export const operandStatus = obj({ conditions }, { description: 'Observed state.' });
export const ztwimStatus = obj(
  {
    conditions,
    operands: arr(
      obj(
        {
          kind: str({ required: true, maxLength: 64, description: 'Operand kind.' }),
          name: str({ required: true, maxLength: 253, description: 'Operand CR name.' }),
          ready: oneOf(['true', 'false'] as const, { required: true, description: 'Whether the operand is ready.' }),
          message: str({ maxLength: 32768, description: 'Why not, when not.' }),
          conditions,
        },
        { description: "One operand's state." },
      ),
      { maxItems: 8, listMapKeys: ['kind'], description: 'State of each operand.' },
    ),
  },
  { description: 'Observed state of the identity plane.' },
);

// ---- the kinds ----

export interface KindDescriptor {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly listKind: string;
  readonly description: string;
  readonly spec: ObjectSchema;
  readonly status: ObjectSchema;
  readonly specRequired: boolean;
  /** Root-level rules (metadata). */
  readonly rootCel: readonly CelRule[];
}

const singleton: CelRule = { rule: "self.metadata.name == 'cluster'", message: "metadata.name must be 'cluster' (one per cluster)" };

function kind(k: string, plural: string, description: string, spec: ObjectSchema, status: ObjectSchema, specRequired: boolean): KindDescriptor {
  return { kind: k, plural, singular: k.toLowerCase(), listKind: `${k}List`, description, spec, status, specRequired, rootCel: [singleton] };
}

export const KINDS = {
  ZeroTrustWorkloadIdentityManager: kind(
    'ZeroTrustWorkloadIdentityManager',
    'zerotrustworkloadidentitymanagers',
    'The Zero Trust Workload Identity Manager: one per cluster, named cluster.',
    ztwimSpec,
    ztwimStatus,
    false,
  ),
  SpireServer: kind(
    'SpireServer',
    'spireservers',
    'The SPIRE-compatible server of the identity plane: one per cluster, named cluster.',
    spireServerSpec,
    operandStatus,
    true,
  ),
  SpireAgent: kind('SpireAgent', 'spireagents', 'The agents of the identity plane: one per cluster, named cluster.', spireAgentSpec, operandStatus, false),
  SpiffeCSIDriver: kind(
    'SpiffeCSIDriver',
    'spiffecsidrivers',
    'The SPIFFE CSI driver: one per cluster, named cluster.',
    spiffeCsiDriverSpec,
    operandStatus,
    false,
  ),
  SpireOIDCDiscoveryProvider: kind(
    'SpireOIDCDiscoveryProvider',
    'spireoidcdiscoveryproviders',
    'The OIDC discovery provider: one per cluster, named cluster.',
    spireOidcSpec,
    operandStatus,
    true,
  ),
} as const satisfies Record<string, KindDescriptor>;

export type KindName = keyof typeof KINDS;
export const KIND_NAMES = Object.keys(KINDS) as KindName[];

// ---- the TypeScript types (inferred: the schema is the one source) ----

export type ZeroTrustWorkloadIdentityManagerSpec = Infer<typeof ztwimSpec>;
export type SpireServerSpec = Infer<typeof spireServerSpec>;
export type SpireAgentSpec = Infer<typeof spireAgentSpec>;
export type SpiffeCSIDriverSpec = Infer<typeof spiffeCsiDriverSpec>;
export type SpireOIDCDiscoveryProviderSpec = Infer<typeof spireOidcSpec>;
export type Condition = Infer<typeof condition>;
export type OperandStatus = Infer<typeof operandStatus>;
export type ZeroTrustWorkloadIdentityManagerStatus = Infer<typeof ztwimStatus>;

export interface ObjectMeta {
  readonly name: string;
  readonly uid?: string;
  readonly generation?: number;
  readonly resourceVersion?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

interface Cr<K extends KindName, S, St> {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: K;
  readonly metadata: ObjectMeta;
  readonly spec?: S;
  readonly status?: St;
}

export type ZeroTrustWorkloadIdentityManager = Cr<
  'ZeroTrustWorkloadIdentityManager',
  ZeroTrustWorkloadIdentityManagerSpec,
  ZeroTrustWorkloadIdentityManagerStatus
>;
export type SpireServer = Cr<'SpireServer', SpireServerSpec, OperandStatus>;
export type SpireAgent = Cr<'SpireAgent', SpireAgentSpec, OperandStatus>;
export type SpiffeCSIDriver = Cr<'SpiffeCSIDriver', SpiffeCSIDriverSpec, OperandStatus>;
export type SpireOIDCDiscoveryProvider = Cr<'SpireOIDCDiscoveryProvider', SpireOIDCDiscoveryProviderSpec, OperandStatus>;
