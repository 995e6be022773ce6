// The operands' configuration files (digest §3), each a pure function of the normalized CRs and
// the render context: server.conf, agent.conf, the registrar's (controller manager's) config,
// the OIDC discovery provider's config, and the CSI driver's arguments. server.conf and
// agent.conf carry SPIRE's keys, which ztwim reads too (packages/server/src/config,
// packages/agent/src/config), so the same text runs either image.
import { stringify } from 'yaml';
import type { AgentSpec1_0, CsiSpec1_0, OidcSpec1_0, ServerSpec1_0 } from '../api/normalize.ts';
import { DEFAULT_KUBELET_SECURE_PORT, type ResolvedContext } from './context.ts';
import { attr, block, plugin, toHcl, type HclBlock, type HclBody } from './hcl.ts';

/** The ZTWIM CR's three fields, once validation found them present. */
export interface PlaneIdentity {
  readonly trustDomain: string;
  readonly clusterName: string;
  readonly bundleConfigMap: string;
}

// Paths inside the operand containers (ZTWIM 1.0's).
export const PATHS = {
  configDir: '/run/spire/config',
  serverConf: '/run/spire/config/server.conf',
  serverDataDir: '/run/spire/data',
  serverSocketDir: '/tmp/spire-server/private',
  serverSocket: '/tmp/spire-server/private/api.sock',
  serverKeys: '/run/spire/data/keys.json',
  serverTlsDir: '/run/spire/server-tls',
  dbCertsDir: '/run/spire/db/certs',
  registrarConfig: '/run/spire/config/controller-manager-config.yaml',
  agentConf: '/run/spire/config/agent.conf',
  agentDataDir: '/var/lib/spire',
  agentSocketDir: '/tmp/spire-agent/public',
  agentSocket: '/tmp/spire-agent/public/spire-agent.sock',
  bundleDir: '/run/spire/bundle',
  bundleFile: '/run/spire/bundle/bundle.crt',
  tokenDir: '/var/run/secrets/tokens',
  oidcConf: '/run/spire/oidc/config/oidc-discovery-provider.conf',
  oidcConfigDir: '/run/spire/oidc/config',
  oidcWorkloadApiDir: '/spiffe-workload-api',
  oidcTlsDir: '/etc/oidc/tls',
  csiAgentSocketDir: '/spire-agent-socket',
  csiSocketDir: '/spiffe-csi',
  csiRegistrationDir: '/registration',
} as const;

export const DEFAULT_KUBELET_CA = '/etc/kubernetes/kubelet-ca.crt';
/** Environment variable the server reads its datastore connection string from (connectionStringSecretRef). */
export const DATASTORE_ENV = 'ZTWIM_DATASTORE_CONNECTION_STRING';
export const REGISTRAR_CLASS_NAME = 'zero-trust-workload-identity-manager-spire';
export const WEBHOOK_CONFIGURATION_NAME = 'spire-controller-manager-webhook';

const upper = (l: string): string => l.toUpperCase();

/** SPIRE's health listener (/live, /ready) and Prometheus endpoint, on every interface. */
function healthAndMetrics(healthPort: number, metricsPort: number): HclBlock[] {
  return [
    block('health_checks', [
      ...attr('listener_enabled', true),
      ...attr('bind_address', '0.0.0.0'),
      ...attr('bind_port', String(healthPort)),
      ...attr('live_path', '/live'),
      ...attr('ready_path', '/ready'),
    ]),
    block('telemetry', [block('Prometheus', [...attr('host', '0.0.0.0'), ...attr('port', metricsPort)])]),
  ];
}

function federationBlock(s: ServerSpec1_0, ctx: ResolvedContext): HclBlock[] {
  const f = s.federation;
  if (f === undefined) return [];
  const be = f.bundleEndpoint;
  let profile: HclBlock;
  if (be.profile === 'https_web') {
    const acme = be.httpsWeb?.acme;
    const sc = be.httpsWeb?.servingCert;
    profile = block(
      'profile',
      acme !== undefined
        ? [
            block('acme', [
              ...attr('directory_url', acme.directoryUrl),
              ...attr('domain_name', acme.domainName),
              ...attr('email', acme.email),
              ...attr('tos_accepted', acme.tosAccepted === 'true'),
            ]),
          ]
        : [
            block('serving_cert_file', [
              ...attr('cert_file_path', `${PATHS.serverTlsDir}/tls.crt`),
              ...attr('key_file_path', `${PATHS.serverTlsDir}/tls.key`),
              ...attr('file_sync_interval', `${sc?.fileSyncInterval ?? 86400}s`),
            ]),
          ],
      ['https_web'],
    );
  } else profile = block('profile', [], ['https_spiffe']);
  const body: HclBody = [
    block('bundle_endpoint', [
      ...attr('address', '0.0.0.0'),
      ...attr('port', ctx.ports.serverFederation),
      ...attr('refresh_hint', `${be.refreshHint}s`),
      profile,
    ]),
    ...(f.federatesWith ?? []).map((w) =>
      block(
        'federates_with',
        [
          ...attr('bundle_endpoint_url', w.bundleEndpointUrl),
          w.bundleEndpointProfile === 'https_spiffe'
            ? block('bundle_endpoint_profile', attr('endpoint_spiffe_id', w.endpointSpiffeId ?? ''), ['https_spiffe'])
            : block('bundle_endpoint_profile', [], ['https_web']),
        ],
        [w.trustDomain],
      ),
    ),
  ];
  return [block('federation', body)];
}

/** server.conf (digest §3). */
export function renderServerConf(id: PlaneIdentity, s: ServerSpec1_0, ctx: ResolvedContext): string {
  const ds = s.datastore;
  const connectionString = ds.connectionStringSecretRef !== undefined ? `\${${DATASTORE_ENV}}` : ds.connectionString;
  const memoryKeys = s.keyManager.memoryEnabled === 'true' && s.keyManager.diskEnabled === 'false';
  const subject = s.caSubject;
  const server: HclBody = [
    ...attr('bind_address', '0.0.0.0'),
    ...attr('bind_port', String(ctx.ports.serverGrpc)),
    ...attr('socket_path', PATHS.serverSocket),
    ...attr('trust_domain', id.trustDomain),
    ...attr('data_dir', PATHS.serverDataDir),
    ...attr('log_level', upper(s.logLevel)),
    ...attr('log_format', s.logFormat),
    ...attr('audit_log_enabled', false),
    ...attr('ca_key_type', s.caKeyType),
    ...attr('jwt_key_type', s.jwtKeyType),
    block('ca_subject', [
      ...attr('country', subject.country === undefined ? undefined : [subject.country]),
      ...attr('organization', subject.organization === undefined ? undefined : [subject.organization]),
      ...attr('common_name', subject.commonName),
    ]),
    ...attr('ca_ttl', s.caValidity),
    ...attr('default_x509_svid_ttl', s.defaultX509Validity),
    ...attr('default_jwt_svid_ttl', s.defaultJWTValidity),
    ...attr('jwt_issuer', s.jwtIssuer),
    ...federationBlock(s, ctx),
  ];
  const sql: HclBody = [
    ...attr('database_type', ds.databaseType),
    ...attr('connection_string', connectionString),
    ...(ds.maxOpenConns > 0 ? attr('max_open_conns', ds.maxOpenConns) : []),
    ...(ds.maxIdleConns > 0 ? attr('max_idle_conns', ds.maxIdleConns) : []),
    ...(ds.connMaxLifetime > 0 ? attr('conn_max_lifetime', `${ds.connMaxLifetime}s`) : []),
    ...attr('disable_migration', ds.disableMigration === 'true'),
  ];
  const plugins: HclBody = [
    plugin('DataStore', 'sql', sql),
    memoryKeys ? plugin('KeyManager', 'memory', []) : plugin('KeyManager', 'disk', attr('keys_path', PATHS.serverKeys)),
    plugin('NodeAttestor', 'k8s_psat', [
      ...attr('clusters', {
        [id.clusterName]: { service_account_allow_list: [`${ctx.namespace}:spire-agent`], audience: ['spire-server'] },
      }),
    ]),
    plugin('Notifier', 'k8sbundle', [...attr('namespace', ctx.namespace), ...attr('config_map', id.bundleConfigMap)]),
  ];
  return toHcl([block('server', server), block('plugins', plugins), ...healthAndMetrics(ctx.ports.serverHealth, ctx.ports.serverMetrics)]);
}

/** Where the agent finds the kubelet CA (undefined: none to mount), per digest §6.3. */
export function kubeletCaPath(a: AgentSpec1_0): string | undefined {
  const v = a.workloadAttestors?.workloadAttestorsVerification;
  const type = v?.type ?? 'skip';
  if (type === 'hostCert' || (type === 'auto' && v?.hostCertBasePath !== undefined && v.hostCertFileName !== undefined)) {
    return `${(v?.hostCertBasePath ?? '').replace(/\/+$/, '')}/${v?.hostCertFileName ?? ''}`;
  }
  if (type === 'auto') return DEFAULT_KUBELET_CA;
  return undefined;
}

/** agent.conf (digest §3). */
export function renderAgentConf(id: PlaneIdentity, a: AgentSpec1_0, ctx: ResolvedContext): string {
  const plugins: HclBlock[] = [plugin('KeyManager', 'memory', [])];
  if (a.nodeAttestor !== undefined && a.nodeAttestor.k8sPSATEnabled === 'true') {
    plugins.push(plugin('NodeAttestor', 'k8s_psat', [...attr('cluster', id.clusterName), ...attr('token_path', `${PATHS.tokenDir}/spire-agent`)]));
  }
  const w = a.workloadAttestors;
  if (w !== undefined && w.k8sEnabled === 'true') {
    const type = w.workloadAttestorsVerification?.type ?? 'skip';
    const ca = kubeletCaPath(a);
    plugins.push(
      plugin('WorkloadAttestor', 'k8s', [
        ...attr('node_name_env', 'MY_NODE_NAME'),
        ...attr('disable_container_selectors', w.disableContainerSelectors === 'true'),
        ...attr('use_new_container_locator', w.useNewContainerLocator === 'true'),
        ...(type === 'skip' ? attr('skip_kubelet_verification', true) : []),
        ...attr('kubelet_ca_path', ca),
        // SPIRE's default is 10250: the key is written only for a kubelet on another port.
        ...(ctx.kubeletSecurePort === DEFAULT_KUBELET_SECURE_PORT ? [] : attr('kubelet_secure_port', ctx.kubeletSecurePort)),
      ]),
    );
  }
  return toHcl([
    block('agent', [
      ...attr('data_dir', PATHS.agentDataDir),
      ...attr('log_level', upper(a.logLevel)),
      ...attr('log_format', a.logFormat),
      ...attr('retry_bootstrap', true),
      ...attr('server_address', ctx.serverAddress.host),
      ...attr('server_port', String(ctx.serverAddress.port)),
      ...attr('socket_path', PATHS.agentSocket),
      ...attr('trust_bundle_path', PATHS.bundleFile),
      ...attr('trust_domain', id.trustDomain),
    ]),
    block('plugins', plugins),
    ...healthAndMetrics(ctx.ports.agentHealth, ctx.ports.agentMetrics),
  ]);
}

/** The registrar's config (spire-controller-manager's ControllerManagerConfig keys, digest §3/§4.5). */
export function renderRegistrarConfig(id: PlaneIdentity, ctx: ResolvedContext): string {
  const cfg = {
    apiVersion: 'spire.spiffe.io/v1alpha1',
    kind: 'ControllerManagerConfig',
    // controller-runtime's ControllerManagerConfigurationSpec keys, which spire-controller-manager embeds
    metrics: { bindAddress: `0.0.0.0:${ctx.ports.registrarMetrics}` },
    health: { healthProbeBindAddress: `0.0.0.0:${ctx.ports.registrarHealth}` },
    webhook: { port: ctx.ports.registrarWebhook },
    leaderElection: { leaderElect: true, resourceName: 'spire-controller-manager-leader-election', resourceNamespace: ctx.namespace },
    clusterName: id.clusterName,
    trustDomain: id.trustDomain,
    clusterDomain: ctx.clusterDomain,
    entryIDPrefix: id.clusterName,
    className: REGISTRAR_CLASS_NAME,
    watchClassless: false,
    parentIDTemplate: 'spiffe://{{ .TrustDomain }}/spire/agent/k8s_psat/{{ .ClusterName }}/{{ .NodeMeta.UID }}',
    reconcile: { clusterSPIFFEIDs: true, clusterStaticEntries: true, clusterFederatedTrustDomains: true },
    validatingWebhookConfigurationName: WEBHOOK_CONFIGURATION_NAME,
    spireServerSocketPath: PATHS.serverSocket,
    ignoreNamespaces: ['kube-system', 'kube-public', 'local-path-storage', 'openshift-.*'],
  };
  return stringify(cfg, { lineWidth: 0 });
}

/** The host and path of an issuer URL ("oidc.example.org/tenant"). */
export function issuerHostPath(issuer: string): string {
  try {
    const u = new URL(issuer);
    return (u.host + u.pathname).replace(/\/+$/, '');
  } catch {
    return issuer;
  }
}

export const OIDC_SERVICE = 'spire-spiffe-oidc-discovery-provider';

/** The provider's TLS Secret: externalSecretRef, else the OpenShift service-CA Secret; none: plain HTTP. */
export function oidcTlsSecret(o: OidcSpec1_0, ctx: ResolvedContext): string | undefined {
  return o.externalSecretRef ?? (ctx.hasOpenShiftGroups ? 'oidc-serving-cert' : undefined);
}

/** The issuer's host name, without port or path (the issuer itself when it is no URL). */
function issuerHostName(issuer: string): string {
  try {
    return new URL(issuer).hostname;
  } catch {
    return issuer;
  }
}

/** oidc-discovery-provider.conf (digest §3). */
export function renderOidcConfig(id: PlaneIdentity, o: OidcSpec1_0, ctx: ResolvedContext): string {
  const ns = ctx.namespace;
  // A domain is a host name: the issuer's port and path stay out (the provider compares the
  // request's Host without its port, and refuses a domain with a port at start).
  const domains = [OIDC_SERVICE, `${OIDC_SERVICE}.${ns}`, `${OIDC_SERVICE}.${ns}.svc.${ctx.clusterDomain}`, issuerHostName(o.jwtIssuer)];
  const tls = oidcTlsSecret(o, ctx);
  return toHcl([
    ...attr('log_level', upper(o.logLevel)),
    ...attr('log_format', o.logFormat),
    ...attr('domains', [...new Set(domains)]),
    ...attr('jwt_issuer', o.jwtIssuer),
    ...(o.setKeyUse === 'true' ? attr('set_key_use', true) : []),
    ...(tls === undefined
      ? // no certificate to serve with (no OpenShift service CA, no externalSecretRef): plain HTTP
        [...attr('allow_insecure_scheme', true), ...attr('insecure_addr', `:${ctx.ports.oidcHttps}`)]
      : [
          block('serving_cert_file', [
            ...attr('addr', `:${ctx.ports.oidcHttps}`),
            ...attr('cert_file_path', `${PATHS.oidcTlsDir}/tls.crt`),
            ...attr('key_file_path', `${PATHS.oidcTlsDir}/tls.key`),
          ]),
        ]),
    block('workload_api', [...attr('socket_path', `${PATHS.oidcWorkloadApiDir}/spire-agent.sock`), ...attr('trust_domain', id.trustDomain)]),
    block('health_checks', [...attr('bind_port', String(ctx.ports.oidcHealth)), ...attr('live_path', '/live'), ...attr('ready_path', '/ready')]),
  ]);
}

export interface CsiArgs {
  /** The driver container's arguments (after the command). */
  readonly driver: readonly string[];
  /** node-driver-registrar's arguments; undefined when the driver registers itself (ztwim csi). */
  readonly registrar?: readonly string[];
}

/** The CSI driver's flags (digest §2.4). ztwim csi registers itself with the kubelet. */
export function renderCsiArgs(c: CsiSpec1_0, ctx: ResolvedContext): CsiArgs {
  const p = c.pluginName;
  const hostSocket = `${ctx.kubeletRoot}/plugins/${p}/csi.sock`;
  const base = ['-workload-api-socket-dir', PATHS.csiAgentSocketDir, '-plugin-name', p, '-csi-socket-path', `${PATHS.csiSocketDir}/csi.sock`];
  if (ctx.variant === 'ztwim') {
    return {
      driver: [
        ...base,
        '-kubelet-plugins-registry-dir',
        PATHS.csiRegistrationDir,
        '-kubelet-registration-path',
        hostSocket,
        '-log-level',
        c.logLevel,
        '-log-format',
        c.logFormat,
      ],
    };
  }
  return {
    driver: base,
    registrar: ['-csi-address', `${PATHS.csiSocketDir}/csi.sock`, '-kubelet-registration-path', hostSocket, '-health-port', String(ctx.ports.csiHealth)],
  };
}
