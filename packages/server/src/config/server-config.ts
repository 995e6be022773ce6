import { isAbsolute, join, resolve } from 'node:path';
import {
  configError,
  loadConfigFile,
  parseLogLevel,
  parseLogFormat,
  problems,
  readHealthChecks,
  Section,
  throwIfProblems,
  type ConfigObject,
  type LoadConfigOptions,
  type LogLevel,
  type LogFormat,
  type Problems,
  type HealthChecksConfig,
} from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { parsePgConnectionString } from '../datastore/postgres/connection-string.ts';
import { parseFederationConfig, type FederationConfig } from '../federation/config.ts';
import { K8S_BUNDLE_DEFAULTS, type K8sBundleNotifierConfig } from '../notifier/k8s-bundle-config.ts';

export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-4096';
const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096'];

export type DataStoreConfig =
  | { readonly type: 'sqlite3'; readonly path: string }
  | {
      readonly type: 'postgres';
      readonly connectionString: string;
      /** SPIRE's ro_connection_string: a read replica for the reads that tolerate staleness. */
      readonly roConnectionString?: string;
      readonly maxOpenConns: number;
      readonly maxIdleConns: number;
      readonly connMaxLifetimeMs: number;
    };

export type KeyManagerConfig = { readonly type: 'memory' } | { readonly type: 'disk'; readonly path: string };

export interface X509PopConfig {
  readonly mode: 'external_pki' | 'spiffe';
  readonly caBundlePaths: readonly string[];
  readonly agentPathTemplate?: string;
  readonly spiffePrefix: string;
}

/** One cluster of SPIRE's k8s_psat `clusters` map. */
export interface K8sPsatClusterConfig {
  readonly name: string;
  /** `<namespace>:<service account>` entries. */
  readonly serviceAccountAllowList: readonly string[];
  /** TokenReview audiences: SPIRE's default ["spire-server"]; an explicit [] means the apiserver's. */
  readonly audience: readonly string[];
  /** Absolute path, or '' for the in-cluster config. */
  readonly kubeConfigFile: string;
  readonly allowedNodeLabelKeys: readonly string[];
  readonly allowedPodLabelKeys: readonly string[];
}

export interface K8sPsatConfig {
  readonly clusters: readonly K8sPsatClusterConfig[];
}

export interface NodeAttestorsConfig {
  readonly joinToken: boolean;
  readonly x509pop?: X509PopConfig;
  readonly k8sPsat?: K8sPsatConfig;
}

/** The server's runtime configuration: validated, defaults applied, frozen. */
export interface ServerConfig {
  readonly trustDomain: TrustDomain;
  readonly bindAddress: string;
  readonly bindPort: number;
  readonly socketPath: string;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  /** SPIRE's log_format; unset: JSON. */
  readonly logFormat?: LogFormat;
  readonly caSubject: { readonly country: readonly string[]; readonly organization: readonly string[]; readonly commonName: string };
  readonly caKeyType: KeyType;
  readonly jwtKeyType: KeyType;
  readonly caTtlMs: number;
  readonly x509SvidTtlMs: number;
  readonly jwtSvidTtlMs: number;
  readonly agentTtlMs: number;
  readonly jwtIssuer?: string;
  readonly adminIds: readonly SpiffeId[];
  readonly dataStore: DataStoreConfig;
  readonly keyManager: KeyManagerConfig;
  readonly nodeAttestors: NodeAttestorsConfig;
  /** SPIRE's `Notifier "k8sbundle"`: the bundle's roots into a ConfigMap. */
  readonly notifiers?: { readonly k8sBundle?: K8sBundleNotifierConfig };
  /** Prometheus listener (SPIRE's `telemetry { Prometheus { host port } }`); undefined serves none. */
  readonly metrics?: { readonly host: string; readonly port: number };
  /** SPIRE's `audit_log_enabled`: one `API accessed` line per Server API call. */
  readonly auditLog?: boolean;
  /** SPIRE's `ratelimit { attestation signing }`: per-IP limits (1 attestation/s, 500 signings/s), both on by default. */
  readonly rateLimit?: { readonly attestation: boolean; readonly signing: boolean };
  /** Keys accepted but not acted on, deprecated names: logged at start, printed by `validate`. */
  readonly warnings?: readonly string[];
  readonly healthChecks?: HealthChecksConfig;
  /** SPIRE's `federation` block: the bundle endpoint and static relationships. */
  readonly federation?: FederationConfig;
}

export const SERVER_DEFAULTS = {
  bindAddress: '0.0.0.0',
  bindPort: 8081,
  socketPath: '/tmp/spire-server/private/api.sock',
  dataDir: './.ztwim/server',
  logLevel: 'info' as LogLevel,
  caKeyType: 'ec-p256' as KeyType,
  caTtlMs: 24 * 3600_000,
  x509SvidTtlMs: 3600_000,
  jwtSvidTtlMs: 5 * 60_000,
  /** SPIRE's Prometheus host when the block names none. */
  metricsHost: 'localhost',
} as const;

/** Overrides from command-line flags (flags > file > defaults). */
export interface ServerConfigOverrides {
  readonly trustDomain?: string;
  readonly bindAddress?: string;
  readonly bindPort?: number;
  readonly socketPath?: string;
  readonly dataDir?: string;
  readonly logLevel?: string;
}

/**
 * Reads top-level blocks the server itself does not act on (the CLI's `console { }`, read by
 * @ztwim/console), from the same document and into the same problem list, so that `validate`
 * reports every problem at once. A block nobody reads is an unknown key.
 */
export type ExtraBlocksReader = (root: Section, baseDir: string) => void;

/** `options.expandEnv`: SPIRE's -expandEnv (variables expanded in the file's text before parsing). */
export function loadServerConfig(
  path: string,
  overrides: ServerConfigOverrides = {},
  options: LoadConfigOptions = {},
  extra?: ExtraBlocksReader,
): ServerConfig {
  return buildServerConfig(loadConfigFile(path, options), path, overrides, process.cwd(), extra);
}

/** The one place where raw server config becomes runtime config. Reports every problem at once. */
export function buildServerConfig(
  doc: ConfigObject,
  where: string,
  overrides: ServerConfigOverrides = {},
  baseDir = process.cwd(),
  extra?: ExtraBlocksReader,
): ServerConfig {
  const p = problems(where);
  const root = new Section(doc, '', p);
  const s = root.section('server') ?? new Section({ kind: 'object', entries: [], line: 1 }, 'server', p);

  const fileTd = s.string('trust_domain');
  const tdRaw = overrides.trustDomain ?? fileTd;
  let trustDomain: TrustDomain | undefined;
  if (tdRaw === undefined) p.add('server.trust_domain', s.lineOf('trust_domain'), 'is required');
  else {
    try {
      trustDomain = TrustDomain.parse(tdRaw);
    } catch (e) {
      if (overrides.trustDomain !== undefined) p.flag('trustDomain', tdRaw, (e as Error).message);
      else p.add('server.trust_domain', s.lineOf('trust_domain'), (e as Error).message);
    }
  }
  const fileBindAddress = s.string('bind_address');
  const bindAddress = overrides.bindAddress ?? fileBindAddress ?? SERVER_DEFAULTS.bindAddress;
  const fileBindPort = s.number('bind_port', { integer: true, min: 0, max: 65535 });
  const bindPort = overrides.bindPort ?? fileBindPort ?? SERVER_DEFAULTS.bindPort;
  const fileSocketPath = s.string('socket_path');
  const socketPath = overrides.socketPath ?? fileSocketPath ?? SERVER_DEFAULTS.socketPath;
  const fileDataDir = s.string('data_dir');
  const dataDir = resolve(baseDir, overrides.dataDir ?? fileDataDir ?? SERVER_DEFAULTS.dataDir);
  const fileLevel = s.string('log_level');
  const levelRaw = overrides.logLevel ?? fileLevel;
  let logLevel: LogLevel = SERVER_DEFAULTS.logLevel;
  if (levelRaw !== undefined) {
    const l = parseLogLevel(levelRaw);
    const msg = `unknown level "${levelRaw}" (use debug, info, warn or error)`;
    if (l === undefined) {
      if (overrides.logLevel !== undefined) p.flag('logLevel', levelRaw, msg);
      else p.add('server.log_level', s.lineOf('log_level'), msg);
    } else logLevel = l;
  }
  const logFormatRaw = s.string('log_format');
  const logFormat = logFormatRaw === undefined ? undefined : parseLogFormat(logFormatRaw);
  if (logFormatRaw !== undefined && logFormat === undefined)
    p.add('server.log_format', s.lineOf('log_format'), `must be "text" or "json", got "${logFormatRaw}"`);
  s.unimplemented('log_file', 'logs go to standard error');
  s.unimplemented('log_source_location', 'log lines carry no source location');

  const subj = s.section('ca_subject');
  const caSubject = {
    country: subj?.stringList('country') ?? ['US'],
    organization: subj?.stringList('organization') ?? ['SPIFFE'],
    commonName: subj?.string('common_name') ?? '',
  };
  subj?.done();
  const keyType = (key: string): KeyType | undefined => {
    const v = s.string(key);
    if (v === undefined) return undefined;
    if (!(KEY_TYPES as readonly string[]).includes(v)) {
      p.add(`server.${key}`, s.lineOf(key), `must be one of ${KEY_TYPES.join(', ')}`);
      return undefined;
    }
    return v as KeyType;
  };
  const caKeyType = keyType('ca_key_type') ?? SERVER_DEFAULTS.caKeyType;
  const jwtKeyType = keyType('jwt_key_type') ?? caKeyType;
  const caTtlMs = s.duration('ca_ttl') ?? SERVER_DEFAULTS.caTtlMs;
  // SPIRE's precedence for its deprecated name of the X.509 TTL, with SPIRE's warnings
  const newX509Ttl = s.duration('default_x509_svid_ttl');
  const oldX509Ttl = s.duration('default_svid_ttl');
  if (oldX509Ttl !== undefined && newX509Ttl !== undefined) {
    p.warn(
      'server.default_svid_ttl',
      s.lineOf('default_svid_ttl'),
      `is ignored: both default_x509_svid_ttl and default_svid_ttl are configured; default_x509_svid_ttl (${s.string('default_x509_svid_ttl') ?? `${newX509Ttl / 1000}s`}) will be used for X509-SVIDs`,
    );
  } else if (oldX509Ttl !== undefined) {
    p.warn('server.default_svid_ttl', s.lineOf('default_svid_ttl'), 'is deprecated; consider using default_x509_svid_ttl and default_jwt_svid_ttl instead');
  }
  const x509SvidTtlMs = newX509Ttl ?? oldX509Ttl ?? SERVER_DEFAULTS.x509SvidTtlMs;
  const jwtSvidTtlMs = s.duration('default_jwt_svid_ttl') ?? SERVER_DEFAULTS.jwtSvidTtlMs;
  const agentTtlMs = s.duration('agent_ttl') ?? x509SvidTtlMs;
  for (const [k, v] of [
    ['ca_ttl', caTtlMs],
    ['default_x509_svid_ttl', x509SvidTtlMs],
    ['default_jwt_svid_ttl', jwtSvidTtlMs],
  ] as const) {
    if (v <= 0) p.add(`server.${k}`, s.lineOf(k), 'must be positive');
  }
  const jwtIssuer = s.string('jwt_issuer');
  if (jwtIssuer !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(jwtIssuer);
    } catch {
      /* reported below */
    }
    if (u === undefined || u.host === '' || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
      p.add('server.jwt_issuer', s.lineOf('jwt_issuer'), `must be an http(s) URL with a host, got "${jwtIssuer}"`);
    }
  }
  const adminIds: SpiffeId[] = [];
  for (const a of s.stringList('admin_ids') ?? []) {
    try {
      adminIds.push(SpiffeId.parse(a));
    } catch (e) {
      p.add('server.admin_ids', s.lineOf('admin_ids'), (e as Error).message);
    }
  }
  const auditLog = s.bool('audit_log_enabled') ?? false;
  const fedSection = s.section('federation');
  const federation = fedSection === undefined ? undefined : parseFederationConfig(fedSection, p, baseDir, trustDomain?.name, dataDir);
  // SPIRE's per-IP limits on agent attestation and on signing, both on unless turned off.
  const rl = s.section('ratelimit');
  const rateLimit = { attestation: rl?.bool('attestation') ?? true, signing: rl?.bool('signing') ?? true };
  rl?.done();
  s.unimplemented('experimental', 'its settings have no effect');
  s.unimplemented('prune_attested_nodes_expired_for', 'expired agents are not pruned');
  s.unimplemented('prune_tofu_nodes', 'expired agents are not pruned');
  for (const k of ['profiling_enabled', 'profiling_port', 'profiling_freq', 'profiling_names']) s.unimplemented(k, 'no profiling endpoint will be served');
  s.done();

  // plugins
  let dataStore: DataStoreConfig = { type: 'sqlite3', path: join(dataDir, 'datastore.sqlite3') };
  let keyManager: KeyManagerConfig = { type: 'disk', path: join(dataDir, 'keys.json') };
  let joinToken = false;
  let x509pop: X509PopConfig | undefined;
  let k8sPsat: K8sPsatConfig | undefined;
  let k8sBundle: K8sBundleNotifierConfig | undefined;
  const plugins = root.section('plugins');
  if (plugins !== undefined) {
    const ds = plugins.labelled('DataStore');
    if (ds.length > 1) p.add('plugins.DataStore', ds[1]?.line ?? 0, 'only one DataStore may be configured');
    for (const { label, section, line } of ds) {
      if (label !== 'sql') {
        p.add(`plugins.DataStore.${label}`, line, 'unknown DataStore plugin (supported: sql)');
        continue;
      }
      const pd = pluginData(section);
      const type = pd?.string('database_type') ?? 'sqlite3';
      const conn = pd?.string('connection_string');
      const maxOpenConns = pd?.number('max_open_conns', { integer: true, min: 1 }) ?? 100;
      const maxIdleConns = pd?.number('max_idle_conns', { integer: true, min: 0 }) ?? 2;
      const connMaxLifetimeMs = pd?.duration('conn_max_lifetime') ?? 0;
      const roConn = pd?.string('ro_connection_string');
      pd?.ignore('disable_migration');
      pd?.done();
      /** A connection string is checked here, so a bad one stops the start naming its key and cause. */
      const checkConn = (key: 'connection_string' | 'ro_connection_string', value: string): void => {
        try {
          parsePgConnectionString(value);
        } catch (e) {
          p.add(
            `plugins.DataStore.sql.plugin_data.${key}`,
            pd?.lineOf(key) ?? line,
            (e as Error).message.replace(/^datastore: postgres connection_string: /, ''),
          );
        }
      };
      if (type === 'sqlite3') {
        if (roConn !== undefined) {
          p.warn(
            'plugins.DataStore.sql.plugin_data.ro_connection_string',
            pd?.lineOf('ro_connection_string') ?? line,
            'is used with postgres only; ignored for sqlite3',
          );
        }
        dataStore = { type: 'sqlite3', path: conn === undefined ? join(dataDir, 'datastore.sqlite3') : resolve(baseDir, conn) };
      } else if (type === 'postgres') {
        if (conn === undefined) p.add(`plugins.DataStore.sql.plugin_data.connection_string`, line, 'is required for postgres');
        else checkConn('connection_string', conn);
        if (roConn !== undefined && roConn !== '') checkConn('ro_connection_string', roConn);
        dataStore = {
          type: 'postgres',
          connectionString: conn ?? '',
          ...(roConn === undefined || roConn === '' ? {} : { roConnectionString: roConn }),
          maxOpenConns,
          maxIdleConns,
          connMaxLifetimeMs,
        };
      } else {
        p.add('plugins.DataStore.sql.plugin_data.database_type', line, `unsupported database_type "${type}" (use sqlite3 or postgres)`);
      }
    }
    for (const { label, section, line } of plugins.labelled('KeyManager')) {
      const pd = pluginData(section);
      if (label === 'memory') keyManager = { type: 'memory' };
      else if (label === 'disk') {
        const kp = pd?.string('keys_path');
        keyManager = { type: 'disk', path: kp === undefined ? join(dataDir, 'keys.json') : resolve(baseDir, kp) };
      } else p.add(`plugins.KeyManager.${label}`, line, 'unknown KeyManager plugin (supported: disk, memory)');
      pd?.done();
    }
    for (const { label, section, line } of plugins.labelled('NodeAttestor')) {
      const pd = pluginData(section);
      if (label === 'join_token') joinToken = true;
      else if (label === 'x509pop') {
        const mode = pd?.string('mode') ?? 'external_pki';
        if (mode !== 'external_pki' && mode !== 'spiffe') p.add(`plugins.NodeAttestor.x509pop.plugin_data.mode`, line, 'must be external_pki or spiffe');
        const paths = [...(pd?.stringList('ca_bundle_paths') ?? [])];
        const one = pd?.string('ca_bundle_path');
        if (one !== undefined) paths.push(one);
        if (mode === 'external_pki' && paths.length === 0) {
          p.add('plugins.NodeAttestor.x509pop.plugin_data.ca_bundle_path', line, 'is required in external_pki mode');
        }
        const tmpl = pd?.string('agent_path_template');
        x509pop = {
          mode: mode === 'spiffe' ? 'spiffe' : 'external_pki',
          caBundlePaths: paths.map((x) => (isAbsolute(x) ? x : resolve(baseDir, x))),
          ...(tmpl === undefined ? {} : { agentPathTemplate: tmpl }),
          spiffePrefix: pd?.string('spiffe_prefix') ?? '/spire-exchange/',
        };
      } else if (label === 'k8s_psat') {
        k8sPsat = parseK8sPsat(pd, line, baseDir, p);
      } else p.add(`plugins.NodeAttestor.${label}`, line, 'unknown NodeAttestor plugin (supported: join_token, x509pop, k8s_psat)');
      pd?.done();
    }
    for (const { label, section, line } of plugins.labelled('Notifier')) {
      const pd = pluginData(section);
      if (label === 'k8sbundle') {
        // As SPIRE: unset or empty values take the defaults.
        const v = (k: string): string | undefined => {
          const x = pd?.string(k);
          return x === '' ? undefined : x;
        };
        const kube = pd?.string('kube_config_file_path') ?? '';
        k8sBundle = {
          namespace: v('namespace') ?? K8S_BUNDLE_DEFAULTS.namespace,
          configMap: v('config_map') ?? K8S_BUNDLE_DEFAULTS.configMap,
          configMapKey: v('config_map_key') ?? K8S_BUNDLE_DEFAULTS.configMapKey,
          kubeConfigFilePath: kube === '' ? '' : resolve(baseDir, kube),
        };
        pd?.unimplemented('webhook_label', 'webhook caBundles are not updated');
        pd?.unimplemented('api_service_label', 'APIService caBundles are not updated');
        pd?.unimplemented('clusters', 'only the top-level cluster gets the bundle');
      } else p.add(`plugins.Notifier.${label}`, line, 'unknown Notifier plugin (supported: k8sbundle)');
      pd?.done();
    }
    for (const k of ['UpstreamAuthority', 'BundlePublisher']) {
      for (const { label, line } of plugins.labelled(k)) p.add(`plugins.${k}.${label}`, line, 'plugin type not supported by ztwim');
    }
    plugins.done();
  }
  // As SPIRE: metrics only where `telemetry { Prometheus { ... } }` asks, on its host (SPIRE's
  // default "localhost") and port (SPIRE's default 0: any free port, logged at start).
  const telemetry = root.section('telemetry');
  let metrics: ServerConfig['metrics'];
  if (telemetry !== undefined) {
    const prom = telemetry.section('Prometheus') ?? telemetry.section('prometheus');
    if (prom !== undefined) {
      const port = prom.number('port', { integer: true, min: 0, max: 65535 }) ?? 0;
      metrics = { host: prom.string('host') ?? SERVER_DEFAULTS.metricsHost, port };
      prom.done();
    }
    telemetry.ignore('enabled');
    const en = telemetry.bool('disabled');
    if (en === true) metrics = undefined;
    for (const k of ['DogStatsd', 'Statsd', 'M3', 'InMem']) telemetry.unimplemented(k, `no metrics are sent to ${k} (only Prometheus is served)`);
    for (const k of ['MetricPrefix', 'EnableTrustDomainLabel', 'EnableHostnameLabel', 'AllowedPrefixes', 'BlockedPrefixes', 'AllowedLabels', 'BlockedLabels']) {
      telemetry.unimplemented(k, 'Prometheus metrics keep their ztwim names and labels');
    }
    telemetry.done();
  }
  const healthChecks = readHealthChecks(root);
  extra?.(root, baseDir);
  root.done();
  throwIfProblems(p);
  if (trustDomain === undefined) throw configError(`${where}: server.trust_domain is required`);
  return Object.freeze({
    trustDomain,
    bindAddress,
    bindPort,
    socketPath,
    dataDir,
    logLevel,
    ...(logFormat === undefined ? {} : { logFormat }),
    caSubject,
    caKeyType,
    jwtKeyType,
    caTtlMs,
    x509SvidTtlMs,
    jwtSvidTtlMs,
    agentTtlMs,
    ...(jwtIssuer === undefined ? {} : { jwtIssuer }),
    adminIds,
    dataStore,
    keyManager,
    nodeAttestors: { joinToken, ...(x509pop === undefined ? {} : { x509pop }), ...(k8sPsat === undefined ? {} : { k8sPsat }) },
    ...(k8sBundle === undefined ? {} : { notifiers: { k8sBundle } }),
    ...(metrics === undefined ? {} : { metrics }),
    ...(healthChecks === undefined ? {} : { healthChecks }),
    ...(federation === undefined ? {} : { federation }),
    auditLog,
    rateLimit,
    warnings: [...p.warnings],
  });
}

const K8S_PSAT = 'plugins.NodeAttestor.k8s_psat.plugin_data';

/** SPIRE's k8s_psat plugin_data: `clusters = { "<name>" = { service_account_allow_list, audience, ... } }`. */
function parseK8sPsat(pd: Section | undefined, line: number, baseDir: string, p: Problems): K8sPsatConfig {
  const clusters: K8sPsatClusterConfig[] = [];
  const entries = pd?.labelled('clusters') ?? [];
  if (entries.length === 0) p.warn(`${K8S_PSAT}.clusters`, pd?.lineOf('clusters') ?? line, 'lists no cluster: k8s_psat attestation is effectively disabled');
  for (const { label: name, section: c } of entries) {
    const at = `${K8S_PSAT}.clusters.${name}`;
    const allow = c.stringList('service_account_allow_list') ?? [];
    if (allow.length === 0)
      p.add(
        `${at}.service_account_allow_list`,
        c.lineOf('service_account_allow_list'),
        `cluster "${name}" configuration must have at least one service account allowed`,
      );
    for (const sa of allow) {
      if (!/^[^:]+:[^:]+$/.test(sa))
        p.add(`${at}.service_account_allow_list`, c.lineOf('service_account_allow_list'), `"${sa}" must be "<namespace>:<service account>"`);
    }
    const kube = c.string('kube_config_file') ?? '';
    clusters.push({
      name,
      serviceAccountAllowList: allow,
      audience: c.stringList('audience') ?? ['spire-server'],
      kubeConfigFile: kube === '' ? '' : resolve(baseDir, kube),
      allowedNodeLabelKeys: c.stringList('allowed_node_label_keys') ?? [],
      allowedPodLabelKeys: c.stringList('allowed_pod_label_keys') ?? [],
    });
    c.done();
  }
  return { clusters };
}

function pluginData(section: Section): Section | undefined {
  for (const k of ['plugin_cmd', 'plugin_checksum', 'enabled']) section.ignore(k);
  const pd = section.section('plugin_data');
  section.done();
  return pd;
}
