// The registrar's config file: spire-controller-manager's ControllerManagerConfig (YAML or JSON,
// apiVersion spire.spiffe.io/v1alpha1), read with the defaults and checks its main.go applies.
// Unknown keys are ignored as the Go decoder ignores them; a key of the wrong type, a bad
// duration or regex, or a missing required key is one error naming the key.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configError, parseDuration } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';

export interface ReconcileToggles {
  readonly clusterSPIFFEIDs: boolean;
  readonly clusterStaticEntries: boolean;
  readonly clusterFederatedTrustDomains: boolean;
}

export interface LeaderElectionConfig {
  readonly leaderElect: boolean;
  readonly resourceName: string;
  readonly resourceNamespace: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

export interface ManagerConfig {
  readonly clusterName: string;
  readonly trustDomain: string;
  /** '' until auto-detected (or when detection fails, as in SPIRE). */
  readonly clusterDomain: string;
  readonly className: string;
  readonly watchClassless: boolean;
  readonly ignoreNamespaces: readonly RegExp[];
  readonly gcIntervalMs: number;
  readonly spireServerSocketPath: string;
  /** Go template text of the parent ID ('' = the k8s_psat agent ID of the pod's node). */
  readonly parentIDTemplate: string;
  /** With the trailing dot SPIRE appends ('' = no prefix). */
  readonly entryIDPrefix: string;
  /** undefined = no cleanup; '' = remove every unprefixed entry; else with its trailing dot. */
  readonly entryIDPrefixCleanup: string | undefined;
  readonly reconcile: ReconcileToggles;
  /** Directory of CR manifests read instead of the Kubernetes API ('' = use the API). */
  readonly staticManifestPath: string;
  readonly leaderElection: LeaderElectionConfig;
  readonly logEncoding: 'console' | 'json';
  /** host:port for /metrics ('' or '0' = off). */
  readonly metricsBindAddress: string;
  /** host:port for /healthz and /readyz ('' or '0' = off). */
  readonly healthProbeBindAddress: string;
  readonly validatingWebhookConfigurationName: string;
  /**
   * controller-runtime's `webhook` section: where the admission webhook listens (`port`, default
   * 9443, 0 also meaning 9443 as in controller-runtime; `host`, '' = every interface). `certDir`
   * is read and ignored, as spire-controller-manager ignores it (the certificate is an SVID).
   */
  readonly webhook: { readonly host: string; readonly port: number; readonly certDir: string };
}

/** controller-runtime's webhook.DefaultPort. */
export const DEFAULT_WEBHOOK_PORT = 9443;

export const DEFAULT_IGNORE_NAMESPACES = ['kube-system', 'kube-public', 'spire-system'] as const;
export const DEFAULT_GC_INTERVAL_MS = 10_000;
export const DEFAULT_SPIRE_SERVER_SOCKET_PATH = '/spire-server/api.sock';

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Typed readers: each error names the key path. */
class Reader {
  private readonly where: string;
  constructor(where: string) {
    this.where = where;
  }

  fail(key: string, what: string): never {
    throw configError(`${this.where}: ${key}: ${what}`);
  }

  string(o: Obj, key: string, path = key): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(path, `must be a string, not ${describe(v)}`);
    return v;
  }

  bool(o: Obj, key: string, path = key): boolean | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(path, `must be true or false, not ${describe(v)}`);
    return v;
  }

  strings(o: Obj, key: string, path = key): string[] | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) this.fail(path, `must be a list of strings`);
    return v as string[];
  }

  object(o: Obj, key: string, path = key): Obj | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) this.fail(path, `must be a mapping, not ${describe(v)}`);
    return v;
  }

  /** Go time.Duration in JSON: a string such as "10s" (or a number of nanoseconds). */
  duration(o: Obj, key: string, path = key): number | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return Math.round(v / 1e6);
    if (typeof v === 'string') {
      const ms = parseDuration(v);
      if (ms !== undefined) return ms;
      this.fail(path, `invalid duration ${JSON.stringify(v)}`);
    }
    return this.fail(path, `must be a duration such as "10s", not ${describe(v)}`);
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** SPIRE's addDotSuffix. */
function withDot(s: string): string {
  return s !== '' && !s.endsWith('.') ? `${s}.` : s;
}

/** Parses the config text (YAML; JSON is YAML). `where` names the file in errors. */
export function parseManagerConfig(text: string, where = 'config'): ManagerConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    throw configError(`${where}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0] ?? 'syntax error'}`, { cause: e });
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObj(doc)) throw configError(`${where}: the document must be a mapping`);
  const r: Reader = new Reader(where);

  const apiVersion = r.string(doc, 'apiVersion');
  if (apiVersion !== undefined && apiVersion !== 'spire.spiffe.io/v1alpha1') {
    r.fail('apiVersion', `must be spire.spiffe.io/v1alpha1, not ${JSON.stringify(apiVersion)}`);
  }
  const kind = r.string(doc, 'kind');
  if (kind !== undefined && kind !== 'ControllerManagerConfig') {
    r.fail('kind', `must be ControllerManagerConfig, not ${JSON.stringify(kind)}`);
  }

  const trustDomain = r.string(doc, 'trustDomain') ?? '';
  if (trustDomain === '') r.fail('trustDomain', 'is required');
  try {
    TrustDomain.parse(trustDomain);
  } catch (e) {
    r.fail('trustDomain', `invalid trust domain ${JSON.stringify(trustDomain)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const clusterName = r.string(doc, 'clusterName') ?? '';
  if (clusterName === '') r.fail('clusterName', 'is required');

  const ignoreNamespaces = (r.strings(doc, 'ignoreNamespaces') ?? [...DEFAULT_IGNORE_NAMESPACES]).map((src, i) => {
    try {
      // Go's regexp.MatchString: unanchored, as namespace.IsIgnored uses it.
      return new RegExp(src, 'u');
    } catch (e) {
      return r.fail(`ignoreNamespaces[${i}]`, `invalid regex ${JSON.stringify(src)}: ${e instanceof Error ? e.message : String(e)}`);
    }
  });

  const gcIntervalMs = r.duration(doc, 'gcInterval') ?? DEFAULT_GC_INTERVAL_MS;
  if (gcIntervalMs <= 0) r.fail('gcInterval', 'must be more than 0');

  const entryIDPrefix = withDot(r.string(doc, 'entryIDPrefix') ?? '');
  const cleanupRaw = r.string(doc, 'entryIDPrefixCleanup');
  const entryIDPrefixCleanup = cleanupRaw === undefined ? undefined : withDot(cleanupRaw);
  if (entryIDPrefixCleanup !== undefined && entryIDPrefix !== '' && entryIDPrefix === entryIDPrefixCleanup) {
    r.fail('entryIDPrefixCleanup', 'can not be the same value as entryIDPrefix');
  }

  const rec = r.object(doc, 'reconcile');
  const reconcile: ReconcileToggles =
    rec === undefined
      ? { clusterSPIFFEIDs: true, clusterStaticEntries: true, clusterFederatedTrustDomains: true }
      : {
          clusterSPIFFEIDs: r.bool(rec, 'clusterSPIFFEIDs', 'reconcile.clusterSPIFFEIDs') ?? false,
          clusterStaticEntries: r.bool(rec, 'clusterStaticEntries', 'reconcile.clusterStaticEntries') ?? false,
          clusterFederatedTrustDomains: r.bool(rec, 'clusterFederatedTrustDomains', 'reconcile.clusterFederatedTrustDomains') ?? false,
        };

  const le = r.object(doc, 'leaderElection') ?? {};
  const leaderElection: LeaderElectionConfig = {
    leaderElect: r.bool(le, 'leaderElect', 'leaderElection.leaderElect') ?? false,
    resourceName: r.string(le, 'resourceName', 'leaderElection.resourceName') ?? '98c9c988.spiffe.io',
    resourceNamespace: r.string(le, 'resourceNamespace', 'leaderElection.resourceNamespace') ?? '',
    leaseDurationMs: r.duration(le, 'leaseDuration', 'leaderElection.leaseDuration') ?? 15_000,
    renewDeadlineMs: r.duration(le, 'renewDeadline', 'leaderElection.renewDeadline') ?? 10_000,
    retryPeriodMs: r.duration(le, 'retryPeriod', 'leaderElection.retryPeriod') ?? 2_000,
  };
  if (leaderElection.renewDeadlineMs >= leaderElection.leaseDurationMs) {
    r.fail('leaderElection.renewDeadline', 'must be less than leaderElection.leaseDuration');
  }

  const logEncodingRaw = r.string(doc, 'logEncoding') ?? 'console';
  if (logEncodingRaw !== 'console' && logEncodingRaw !== 'json') r.fail('logEncoding', `must be console or json, not ${JSON.stringify(logEncodingRaw)}`);
  const logEncoding: 'console' | 'json' = logEncodingRaw;

  const wh = r.object(doc, 'webhook') ?? {};
  const whPort = wh['port'];
  if (whPort !== undefined && whPort !== null && (typeof whPort !== 'number' || !Number.isInteger(whPort) || whPort < 0 || whPort > 65535)) {
    r.fail('webhook.port', `must be a port number 0-65535, not ${describe(whPort)}`);
  }
  const webhook = {
    host: r.string(wh, 'host', 'webhook.host') ?? '',
    port: typeof whPort === 'number' && whPort !== 0 ? whPort : DEFAULT_WEBHOOK_PORT,
    certDir: r.string(wh, 'certDir', 'webhook.certDir') ?? '',
  };

  const metrics = r.object(doc, 'metrics') ?? {};
  const health = r.object(doc, 'health') ?? {};

  return {
    clusterName,
    trustDomain,
    clusterDomain: r.string(doc, 'clusterDomain') ?? '',
    className: r.string(doc, 'className') ?? '',
    watchClassless: r.bool(doc, 'watchClassless') ?? false,
    ignoreNamespaces,
    gcIntervalMs,
    spireServerSocketPath: r.string(doc, 'spireServerSocketPath') || DEFAULT_SPIRE_SERVER_SOCKET_PATH,
    parentIDTemplate: r.string(doc, 'parentIDTemplate') ?? '',
    entryIDPrefix,
    entryIDPrefixCleanup,
    reconcile,
    staticManifestPath: r.string(doc, 'staticManifestPath') ?? '',
    leaderElection,
    logEncoding,
    metricsBindAddress: r.string(metrics, 'bindAddress', 'metrics.bindAddress') ?? '',
    healthProbeBindAddress: r.string(health, 'healthProbeBindAddress', 'health.healthProbeBindAddress') ?? '',
    validatingWebhookConfigurationName: r.string(doc, 'validatingWebhookConfigurationName') || 'spire-controller-manager-webhook',
    webhook,
  };
}

/** Reads and parses the config file. */
export function loadManagerConfig(path: string): ManagerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw configError(`cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  return parseManagerConfig(text, path);
}

/** namespace.IsIgnored: any regex matches (unanchored, as Go's MatchString). */
export function isNamespaceIgnored(ignore: readonly RegExp[], namespace: string): boolean {
  return ignore.some((re) => re.test(namespace));
}
