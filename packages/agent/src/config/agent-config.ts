// SPIRE agent.conf (HCL/JSON) -> AgentConfig. Programmatic callers build AgentConfig directly.
import { resolve } from 'node:path';
import {
  loadConfigFile,
  parseLogLevel,
  parseLogFormat,
  problems,
  readHealthChecks,
  Section,
  throwIfProblems,
  type ConfigObject,
  type HealthChecksConfig,
  type LoadConfigOptions,
  type LogLevel,
  type LogFormat,
} from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { K8S_PSAT_DEFAULT_TOKEN_PATH } from '../attestation/node/k8s-psat.ts';

import type { K8sAttestorConfig } from '../attestation/workload/k8s.ts';
import { hostProblem, parseServerTarget, type ServerTarget } from './server-targets.ts';
import { DEFAULT_SERVER_KEEPALIVE, type ServerKeepalive } from '../client/keepalive.ts';

export type { ServerTarget } from './server-targets.ts';

export type NodeAttestorConfig =
  | { readonly type: 'join_token' }
  | { readonly type: 'x509pop'; readonly privateKeyPath: string; readonly certificatePath: string; readonly intermediatesPath?: string }
  | { readonly type: 'k8s_psat'; readonly cluster: string; readonly tokenPath: string };

export interface AgentConfig {
  /** SPIRE's `server_address`: a DNS name (it may resolve to several servers) or an IP. */
  readonly serverAddress: string;
  readonly serverPort: number;
  /**
   * ztwim's `server_addresses` (each `host` or `host:port`, the port defaulting to server_port):
   * the servers the agent fails over between, in place of server_address. Unset: server_address.
   */
  readonly serverAddresses?: readonly ServerTarget[];
  readonly trustDomain: string;
  readonly trustBundlePath?: string;
  readonly trustBundleUrl?: string;
  readonly trustBundleFormat: 'pem' | 'spiffe';
  /** In-memory bootstrap bundle (PEM text or SPIFFE bundle JSON per trustBundleFormat). */
  readonly trustBundle?: string;
  readonly insecureBootstrap: boolean;
  readonly joinToken?: string;
  readonly dataDir: string;
  readonly socketPath: string;
  readonly logLevel: LogLevel;
  /** SPIRE's log_format; unset: JSON. */
  readonly logFormat?: LogFormat;
  readonly workloadKeyType: 'ec-p256';
  readonly syncIntervalMs: number;
  readonly nodeAttestor: NodeAttestorConfig;
  readonly keyManager: 'disk' | 'memory';
  readonly unixAttestor: { readonly discoverWorkloadPath: boolean; readonly workloadSizeLimit: number };
  /** `WorkloadAttestor "k8s"`: present only when configured. */
  readonly k8sAttestor?: K8sAttestorConfig;
  /** Prometheus listener, only where `telemetry { Prometheus { ... } }` asks for one (as spire-agent). */
  readonly metrics?: { readonly host: string; readonly port: number };
  /** SPIRE's `health_checks` listener (live_path / ready_path for Kubernetes probes), when enabled. */
  readonly healthChecks?: HealthChecksConfig;
  /**
   * SPIRE's `allow_unauthenticated_verifiers`: a workload with no registration entry may still
   * stream FetchX509Bundles / FetchJWTBundles (its own trust domain's bundle). Unset: refused
   * PermissionDenied "no identity issued", as spire-agent.
   */
  readonly allowUnauthenticatedVerifiers?: boolean;
  /**
   * `server_keepalive_interval` / `server_keepalive_timeout`: HTTP/2 keepalive on the server
   * connection, so a hung server is left like a dead one (client/server-client.ts). Unset: 10 s / 5 s.
   */
  readonly serverKeepalive?: ServerKeepalive;
  /**
   * `server_rebalance_interval`: after a fail-over, how often (on average, jittered) the agent
   * checks the servers and spreads again over those that serve; 0 turns it off. Unset: 2 min.
   */
  readonly serverRebalanceIntervalMs?: number;
  /** Keys accepted but not acted on: logged at start, printed by `validate`. */
  readonly warnings?: readonly string[];
}

/** The servers the agent connects to: server_addresses, or server_address with server_port. */
export function serverTargets(c: Pick<AgentConfig, 'serverAddress' | 'serverPort' | 'serverAddresses'>): readonly ServerTarget[] {
  return c.serverAddresses ?? [{ host: c.serverAddress, port: c.serverPort }];
}

export const AGENT_DEFAULTS = {
  dataDir: './.ztwim/agent',
  socketPath: '/tmp/spire-agent/public/api.sock',
  serverPort: 8081,
  syncIntervalMs: 5000,
  serverRebalanceIntervalMs: 120_000,
} as const;

export interface AgentConfigOverrides {
  readonly serverAddress?: string;
  readonly serverPort?: number;
  readonly trustDomain?: string;
  readonly joinToken?: string;
  readonly dataDir?: string;
  readonly socketPath?: string;
  readonly logLevel?: string;
  readonly trustBundlePath?: string;
  readonly trustBundleUrl?: string;
  readonly insecureBootstrap?: boolean;
}

/** `options.expandEnv`: SPIRE's -expandEnv (variables expanded in the file's text before parsing). */
export function loadAgentConfig(path: string, overrides: AgentConfigOverrides = {}, options: LoadConfigOptions = {}): AgentConfig {
  return buildAgentConfig(loadConfigFile(path, options), path, overrides);
}

/** The command-line value when given, else the file's (both evaluated: the file key counts as read). */
function pick<T>(flag: T | undefined, file: T | undefined): T | undefined {
  return flag ?? file;
}

function pluginData(s: Section): Section | undefined {
  const pd = s.section('plugin_data');
  s.done();
  return pd;
}

export function buildAgentConfig(doc: ConfigObject, where: string, o: AgentConfigOverrides = {}, baseDir = process.cwd()): AgentConfig {
  const p = problems(where);
  const root = new Section(doc, '', p);
  const s = root.section('agent') ?? new Section({ kind: 'object', entries: [], line: 1 }, 'agent', p);
  // File keys are always read (so none is reported unknown), then a flag overrides the value.
  const fileAddress = s.string('server_address');
  const serverAddress = pick(o.serverAddress, fileAddress);
  const serverPort = pick(o.serverPort, s.number('server_port', { integer: true, min: 1, max: 65535 })) ?? AGENT_DEFAULTS.serverPort;
  const listed = s.stringList('server_addresses');
  let serverAddresses: ServerTarget[] | undefined;
  if (o.serverAddress !== undefined) {
    // The -serverAddress flag names the one server to use, whatever the file lists.
    const bad = hostProblem(o.serverAddress);
    if (bad !== undefined) p.flag('serverAddress', o.serverAddress, bad);
  } else if (listed !== undefined) {
    if (fileAddress !== undefined) p.add('agent.server_addresses', s.lineOf('server_addresses'), 'cannot be set together with server_address');
    if (listed.length === 0) p.add('agent.server_addresses', s.lineOf('server_addresses'), 'lists no server');
    serverAddresses = [];
    for (const item of listed) {
      const t = parseServerTarget(item, serverPort);
      if ('problem' in t) p.add('agent.server_addresses', s.lineOf('server_addresses'), t.problem);
      else serverAddresses.push(t);
    }
  } else if (fileAddress === undefined) p.add('agent.server_address', s.lineOf('server_address'), 'is required (or server_addresses)');
  else {
    const bad = hostProblem(fileAddress);
    if (bad !== undefined) p.add('agent.server_address', s.lineOf('server_address'), bad);
  }
  const kaInterval = s.duration('server_keepalive_interval');
  if (kaInterval !== undefined && kaInterval < 1000) p.add('agent.server_keepalive_interval', s.lineOf('server_keepalive_interval'), 'must be at least 1s');
  const kaTimeout = s.duration('server_keepalive_timeout');
  if (kaTimeout !== undefined && kaTimeout < 100) p.add('agent.server_keepalive_timeout', s.lineOf('server_keepalive_timeout'), 'must be at least 100ms');
  const serverKeepalive: ServerKeepalive | undefined =
    kaInterval === undefined && kaTimeout === undefined
      ? undefined
      : { intervalMs: kaInterval ?? DEFAULT_SERVER_KEEPALIVE.intervalMs, timeoutMs: kaTimeout ?? DEFAULT_SERVER_KEEPALIVE.timeoutMs };
  const serverRebalanceIntervalMs = s.duration('server_rebalance_interval');
  if (serverRebalanceIntervalMs !== undefined && serverRebalanceIntervalMs < 0)
    p.add('agent.server_rebalance_interval', s.lineOf('server_rebalance_interval'), 'must not be negative (0 turns rebalancing off)');
  const td = pick(o.trustDomain, s.string('trust_domain'));
  if (td === undefined) p.add('agent.trust_domain', s.lineOf('trust_domain'), 'is required');
  else {
    try {
      TrustDomain.parse(td);
    } catch (e) {
      if (o.trustDomain !== undefined) p.flag('trustDomain', td, (e as Error).message);
      else p.add('agent.trust_domain', s.lineOf('trust_domain'), (e as Error).message);
    }
  }
  const tbp = pick(o.trustBundlePath, s.string('trust_bundle_path'));
  const tbu = pick(o.trustBundleUrl, s.string('trust_bundle_url'));
  const fmt = s.string('trust_bundle_format') ?? 'pem';
  if (fmt !== 'pem' && fmt !== 'spiffe') p.add('agent.trust_bundle_format', s.lineOf('trust_bundle_format'), 'must be pem or spiffe');
  const insecure = pick(o.insecureBootstrap, s.bool('insecure_bootstrap')) ?? false;
  if (tbp !== undefined && tbu !== undefined) p.add('agent.trust_bundle_url', s.lineOf('trust_bundle_url'), 'cannot be set together with trust_bundle_path');
  if (insecure && (tbp !== undefined || tbu !== undefined))
    p.add('agent.insecure_bootstrap', s.lineOf('insecure_bootstrap'), 'cannot be set together with a trust bundle');
  const joinToken = pick(o.joinToken, s.string('join_token'));
  const dataDir = resolve(baseDir, pick(o.dataDir, s.string('data_dir')) ?? AGENT_DEFAULTS.dataDir);
  const socketPath = resolve(baseDir, pick(o.socketPath, s.string('socket_path')) ?? AGENT_DEFAULTS.socketPath);
  const lvlRaw = pick(o.logLevel, s.string('log_level'));
  let logLevel: LogLevel = 'info';
  if (lvlRaw !== undefined) {
    const l = parseLogLevel(lvlRaw);
    if (l === undefined) {
      if (o.logLevel !== undefined) p.flag('logLevel', lvlRaw, `unknown level "${lvlRaw}"`);
      else p.add('agent.log_level', s.lineOf('log_level'), `unknown level "${lvlRaw}"`);
    } else logLevel = l;
  }
  const kt = s.string('workload_x509_svid_key_type') ?? 'ec-p256';
  if (kt !== 'ec-p256') p.add('agent.workload_x509_svid_key_type', s.lineOf('workload_x509_svid_key_type'), 'only ec-p256 is supported');
  let syncIntervalMs: number = AGENT_DEFAULTS.syncIntervalMs;
  const exp = s.section('experimental');
  if (exp !== undefined) {
    const si = exp.duration('sync_interval');
    if (si !== undefined) {
      if (si <= 0) p.add('agent.experimental.sync_interval', exp.lineOf('sync_interval'), 'must be positive');
      else syncIntervalMs = si;
    }
    exp.done();
  }
  const logFormatRaw = s.string('log_format');
  const logFormat = logFormatRaw === undefined ? undefined : parseLogFormat(logFormatRaw);
  if (logFormatRaw !== undefined && logFormat === undefined)
    p.add('agent.log_format', s.lineOf('log_format'), `must be "text" or "json", got "${logFormatRaw}"`);
  s.unimplemented('log_file', 'logs go to standard error');
  s.unimplemented('log_source_location', 'log lines carry no source location');
  s.unimplemented('admin_socket_path', "no agent admin API (SPIRE's debug and delegated identity APIs) is served");
  s.unimplemented('authorized_delegates', 'no Delegated Identity API is served');
  s.unimplemented('sds', 'no Envoy SDS API is served');
  s.unimplemented('trust_bundle_unix_socket', 'set trust_bundle_path or trust_bundle_url instead');
  for (const k of ['retry_bootstrap', 'rebootstrap_mode', 'rebootstrap_delay']) s.unimplemented(k, 'the agent does not re-bootstrap by itself');
  const allowUnauthenticatedVerifiers = s.bool('allow_unauthenticated_verifiers');
  s.unimplemented('allowed_foreign_jwt_claims', 'no foreign JWT claims are accepted');
  s.unimplemented('availability_target', 'SVIDs are renewed at half their lifetime');
  for (const k of ['x509_svid_cache_max_size', 'jwt_svid_cache_max_size']) s.unimplemented(k, 'the SVID caches are not size-limited');
  for (const k of ['profiling_enabled', 'profiling_port', 'profiling_freq', 'profiling_names']) s.unimplemented(k, 'no profiling endpoint will be served');
  s.done();

  let nodeAttestor: NodeAttestorConfig | undefined;
  let keyManager: 'disk' | 'memory' = 'disk';
  let unixAttestor = { discoverWorkloadPath: false, workloadSizeLimit: 0 };
  let k8sAttestor: K8sAttestorConfig | undefined;
  const plugins = root.section('plugins');
  if (plugins !== undefined) {
    for (const { label, section, line } of plugins.labelled('NodeAttestor')) {
      const pd = pluginData(section);
      if (label === 'join_token') nodeAttestor = { type: 'join_token' };
      else if (label === 'x509pop') {
        const kp = pd?.string('private_key_path');
        const cp = pd?.string('certificate_path');
        const ip = pd?.string('intermediates_path');
        if (kp === undefined) p.add('plugins.NodeAttestor.x509pop.plugin_data.private_key_path', line, 'is required');
        if (cp === undefined) p.add('plugins.NodeAttestor.x509pop.plugin_data.certificate_path', line, 'is required');
        nodeAttestor = {
          type: 'x509pop',
          privateKeyPath: resolve(baseDir, kp ?? ''),
          certificatePath: resolve(baseDir, cp ?? ''),
          ...(ip === undefined ? {} : { intermediatesPath: resolve(baseDir, ip) }),
        };
      } else if (label === 'k8s_psat') {
        const cluster = pd?.string('cluster') ?? '';
        if (cluster === '')
          p.add('plugins.NodeAttestor.k8s_psat.plugin_data.cluster', pd?.lineOf('cluster') ?? line, 'is required (missing required cluster block)');
        const tp = pd?.string('token_path') ?? '';
        nodeAttestor = { type: 'k8s_psat', cluster, tokenPath: tp === '' ? K8S_PSAT_DEFAULT_TOKEN_PATH : resolve(baseDir, tp) };
      } else p.add(`plugins.NodeAttestor.${label}`, line, 'unknown NodeAttestor plugin (supported: join_token, x509pop, k8s_psat)');
      pd?.done();
    }
    for (const { label, section, line } of plugins.labelled('KeyManager')) {
      const pd = pluginData(section);
      pd?.ignore('directory');
      if (label === 'disk' || label === 'memory') keyManager = label;
      else p.add(`plugins.KeyManager.${label}`, line, 'unknown KeyManager plugin (supported: disk, memory)');
      pd?.done();
    }
    for (const { label, section, line } of plugins.labelled('WorkloadAttestor')) {
      const pd = pluginData(section);
      if (label === 'unix') {
        unixAttestor = {
          discoverWorkloadPath: pd?.bool('discover_workload_path') ?? false,
          workloadSizeLimit: pd?.number('workload_size_limit', { integer: true, min: -1 }) ?? 0,
        };
      } else if (label === 'k8s') {
        k8sAttestor = pd === undefined ? {} : k8sAttestorConfig(pd, baseDir);
      } else p.add(`plugins.WorkloadAttestor.${label}`, line, 'unknown WorkloadAttestor plugin (supported: unix, k8s)');
      if (label !== 'k8s') pd?.done();
    }
    plugins.done();
  }
  let metrics: AgentConfig['metrics'];
  const telemetry = root.section('telemetry');
  if (telemetry !== undefined) {
    const prom = telemetry.section('Prometheus') ?? telemetry.section('prometheus');
    if (prom !== undefined) {
      const port = prom.number('port', { integer: true, min: 0, max: 65535 });
      if (port === undefined) p.add('telemetry.Prometheus.port', telemetry.lineOf('Prometheus'), 'is required');
      else metrics = { host: prom.string('host') ?? 'localhost', port };
      prom.done();
    }
    if (telemetry.bool('disabled') === true) metrics = undefined;
    for (const k of [
      'enabled',
      'DogStatsd',
      'Statsd',
      'M3',
      'InMem',
      'AllowedPrefixes',
      'BlockedPrefixes',
      'AllowedLabels',
      'BlockedLabels',
      'MetricPrefix',
      'EnableHostnameLabel',
    ])
      telemetry.ignore(k);
    telemetry.done();
  }
  const healthChecks = readHealthChecks(root);
  root.done();
  if (nodeAttestor === undefined) nodeAttestor = { type: 'join_token' };
  throwIfProblems(p);
  return {
    serverAddress: serverAddress ?? serverAddresses?.[0]?.host ?? '',
    serverPort,
    ...(serverAddresses === undefined ? {} : { serverAddresses }),
    trustDomain: td ?? '',
    ...(tbp === undefined ? {} : { trustBundlePath: resolve(baseDir, tbp) }),
    ...(tbu === undefined ? {} : { trustBundleUrl: tbu }),
    trustBundleFormat: fmt === 'spiffe' ? 'spiffe' : 'pem',
    insecureBootstrap: insecure,
    ...(joinToken === undefined ? {} : { joinToken }),
    dataDir,
    socketPath,
    logLevel,
    ...(logFormat === undefined ? {} : { logFormat }),
    workloadKeyType: 'ec-p256',
    syncIntervalMs,
    ...(serverKeepalive === undefined ? {} : { serverKeepalive }),
    ...(serverRebalanceIntervalMs === undefined ? {} : { serverRebalanceIntervalMs }),
    nodeAttestor,
    keyManager,
    unixAttestor,
    ...(k8sAttestor === undefined ? {} : { k8sAttestor }),
    ...(metrics === undefined ? {} : { metrics }),
    ...(healthChecks === undefined ? {} : { healthChecks }),
    ...(allowUnauthenticatedVerifiers === true ? { allowUnauthenticatedVerifiers } : {}),
    warnings: [...p.warnings],
  };
}

/** Every `plugin_data` key of SPIRE v1.13's k8s workload attestor that ztwim acts on. */
const K8S_KEYS = new Set([
  'kubelet_read_only_port',
  'kubelet_secure_port',
  'max_poll_attempts',
  'poll_retry_interval',
  'kubelet_ca_path',
  'skip_kubelet_verification',
  'token_path',
  'certificate_path',
  'private_key_path',
  'use_anonymous_authentication',
  'node_name_env',
  'node_name',
  'reload_interval',
  'disable_container_selectors',
  'use_new_container_locator',
  'verbose_container_locator_logs',
]);

/**
 * `WorkloadAttestor "k8s" { plugin_data { ... } }` with SPIRE's keys. Unknown keys are warned
 * about by name (SPIRE's HCL decoding ignores them silently); SPIRE's experimental sigstore
 * image verification is accepted and warned about as not implemented.
 */
function k8sAttestorConfig(pd: Section, baseDir: string): K8sAttestorConfig {
  const path = (key: string): string | undefined => {
    const v = pd.string(key);
    return v === undefined || v === '' ? v : resolve(baseDir, v);
  };
  const duration = (key: string): number | undefined => {
    const v = pd.duration(key);
    if (v !== undefined && v <= 0) pd.p.add(`${pd.path}.${key}`, pd.lineOf(key), 'must be positive');
    return v;
  };
  const readOnlyPort = pd.number('kubelet_read_only_port', { integer: true, min: 0, max: 65535 });
  const securePort = pd.number('kubelet_secure_port', { integer: true, min: 0, max: 65535 });
  if ((readOnlyPort ?? 0) > 0 && (securePort ?? 0) > 0)
    pd.p.add(`${pd.path}.kubelet_read_only_port`, pd.lineOf('kubelet_read_only_port'), 'cannot be set together with kubelet_secure_port');
  const certificatePath = path('certificate_path');
  const privateKeyPath = path('private_key_path');
  if ((certificatePath ?? '') !== '' && (privateKeyPath ?? '') === '')
    pd.p.add(`${pd.path}.private_key_path`, pd.lineOf('certificate_path'), 'is required with certificate_path');
  if ((certificatePath ?? '') === '' && (privateKeyPath ?? '') !== '')
    pd.p.add(`${pd.path}.certificate_path`, pd.lineOf('private_key_path'), 'is required with private_key_path');
  const entries: Array<[keyof K8sAttestorConfig, unknown]> = [
    ['readOnlyPort', readOnlyPort],
    ['securePort', securePort],
    ['maxPollAttempts', pd.number('max_poll_attempts', { integer: true })],
    ['pollRetryIntervalMs', duration('poll_retry_interval')],
    ['kubeletCaPath', path('kubelet_ca_path')],
    ['skipKubeletVerification', pd.bool('skip_kubelet_verification')],
    ['tokenPath', path('token_path')],
    ['certificatePath', certificatePath],
    ['privateKeyPath', privateKeyPath],
    ['useAnonymousAuthentication', pd.bool('use_anonymous_authentication')],
    ['nodeNameEnv', pd.string('node_name_env')],
    ['nodeName', pd.string('node_name')],
    ['reloadIntervalMs', duration('reload_interval')],
    ['disableContainerSelectors', pd.bool('disable_container_selectors')],
    ['useNewContainerLocator', pd.bool('use_new_container_locator')],
    ['verboseContainerLocatorLogs', pd.bool('verbose_container_locator_logs')],
  ];
  pd.unimplemented('experimental', 'sigstore image signature verification is not done; no sigstore selectors');
  for (const e of pd.obj.entries) {
    if (K8S_KEYS.has(e.key) || e.key === 'experimental') continue;
    pd.p.warn(`${pd.path}.${e.key}`, e.line, 'is not a k8s workload attestor key; ignored');
    pd.ignore(e.key);
  }
  pd.done();
  return Object.fromEntries(entries.filter(([, v]) => v !== undefined)) as K8sAttestorConfig;
}
