// SPIRE's oidc-discovery-provider.conf (HCL; .yaml/.yml/.json by extension) -> OidcConfig plus
// the key source. Every problem names the file, the key (SPIRE's snake_case name) and its line.
import { isAbsolute, resolve } from 'node:path';
import {
  isZtwimError,
  loadConfigFile,
  parseLogLevel,
  problems,
  Section,
  throwIfProblems,
  type ConfigObject,
  type LoadConfigOptions,
  type LogLevel,
  type Problems,
} from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { validateOidcConfig, type OidcConfig } from './config.ts';

/** SPIRE's default poll interval for every key source. */
export const DEFAULT_SOURCE_POLL_INTERVAL_MS = 10_000;
export const DEFAULT_OIDC_CONFIG_PATH = 'oidc-discovery-provider.conf';

/** Where the provider gets the JWT authorities. */
export type KeySourceConfig =
  | {
      /** The agent's Workload API (FetchJWTBundles stream). */
      readonly kind: 'workload_api';
      readonly socketPath: string;
      readonly trustDomain: string;
      /** Cap on the reconnect backoff when the agent is away. */
      readonly pollIntervalMs: number;
    }
  | {
      /** The server API (BundleService.GetBundle) on the server's admin Unix socket. */
      readonly kind: 'server_api';
      readonly socketPath: string;
      readonly pollIntervalMs: number;
    }
  | {
      /** A SPIFFE bundle file on disk. */
      readonly kind: 'file';
      readonly path: string;
      readonly pollIntervalMs: number;
    };

export type LogFormat = 'text' | 'json';

/** A loaded oidc-discovery-provider.conf. */
export interface OidcFileConfig {
  readonly oidc: OidcConfig;
  readonly keySource: KeySourceConfig;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Log to this file instead of stderr. */
  readonly logPath: string | undefined;
  /** Log every request (SPIRE's debug option). */
  readonly logRequests: boolean;
  /** SPIRE keys accepted without effect here: logged at start, printed by `validate`. */
  readonly warnings: readonly string[];
}

/** How the file is read (format, SPIRE's -expandEnv: see LoadConfigOptions), and where it sits. */
export interface LoadOidcConfigOptions extends LoadConfigOptions {
  /** Relative paths in the file resolve against this directory. Default process.cwd(). */
  readonly baseDir?: string;
}

/** Reads and checks an oidc-discovery-provider.conf. Throws ZtwimError ERR_CONFIG naming every problem. */
export function loadOidcConfigFile(path: string, options: LoadOidcConfigOptions = {}): OidcFileConfig {
  return buildOidcFileConfig(loadConfigFile(path, options), path, options.baseDir ?? process.cwd());
}

// camelCase names used by validateOidcConfig -> the file's snake_case keys.
const FILE_NAMES: ReadonlyArray<readonly [string, string]> = [
  ['servingCertFile.certFilePath', 'serving_cert_file.cert_file_path'],
  ['servingCertFile.keyFilePath', 'serving_cert_file.key_file_path'],
  ['servingCertFile.fileSyncIntervalMs', 'serving_cert_file.file_sync_interval'],
  ['servingCertFile.addr', 'serving_cert_file.addr'],
  ['healthChecks.readyPath', 'health_checks.ready_path'],
  ['healthChecks.livePath', 'health_checks.live_path'],
  ['healthChecks.addr', 'health_checks.bind_port'],
  ['acme.directoryUrl', 'acme.directory_url'],
  ['acme.tosAccepted', 'acme.tos_accepted'],
  ['acme.cacheDir', 'acme.cache_dir'],
  ['servingCertFile', 'serving_cert_file'],
  ['healthChecks', 'health_checks'],
  ['allowInsecureScheme', 'allow_insecure_scheme'],
  ['listenSocketPath', 'listen_socket_path'],
  ['serverPathPrefix', 'server_path_prefix'],
  ['insecureAddr', 'insecure_addr'],
  ['jwtIssuer', 'jwt_issuer'],
  ['setKeyUse', 'set_key_use'],
  ['jwksUri', 'jwks_uri'],
  ['tosAccepted: true', 'tos_accepted = true'],
];

function toFileNames(s: string): string {
  let out = s;
  for (const [camel, snake] of FILE_NAMES) out = out.split(camel).join(snake);
  return out;
}

function absPath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Socket path of `unix:///abs/path`, `unix:/abs/path` or `unix:relative/path`; undefined if not `unix:`. */
export function unixSocketPathOf(address: string): string | undefined {
  if (!address.startsWith('unix:')) return undefined;
  let rest = address.slice('unix:'.length);
  if (rest.startsWith('//')) {
    rest = rest.slice(2);
    // `unix://host/path` is not a socket path; only an empty authority is accepted
    if (!rest.startsWith('/')) return undefined;
  }
  return rest === '' ? undefined : rest;
}

function pollInterval(s: Section, p: Problems): number {
  const v = s.duration('poll_interval');
  if (v === undefined) return DEFAULT_SOURCE_POLL_INTERVAL_MS;
  if (v <= 0) {
    p.add(`${s.path}.poll_interval`, s.lineOf('poll_interval'), 'must be positive');
    return DEFAULT_SOURCE_POLL_INTERVAL_MS;
  }
  return v;
}

function required(s: Section, key: string, p: Problems): string | undefined {
  const v = s.string(key);
  if (v === undefined || v === '') {
    p.add(`${s.path}.${key}`, s.lineOf(key), 'must be configured');
    return undefined;
  }
  return v;
}

/** Checks a parsed oidc-discovery-provider.conf; `where` names it in messages. */
export function buildOidcFileConfig(doc: ConfigObject, where: string, baseDir = process.cwd()): OidcFileConfig {
  const p = problems(where);
  const root = new Section(doc, '', p);
  const line = (key: string): number => root.lineOf(key);

  // logging
  let logLevel: LogLevel = 'info';
  const lvl = root.string('log_level');
  if (lvl !== undefined) {
    const l = parseLogLevel(lvl);
    if (l === undefined) p.add('log_level', line('log_level'), `unknown level "${lvl}" (debug, info, warn or error)`);
    else logLevel = l;
  }
  let logFormat: LogFormat = 'text';
  const fmt = root.string('log_format');
  if (fmt !== undefined) {
    const f = fmt.toLowerCase();
    if (f !== 'text' && f !== 'json' && f !== '') p.add('log_format', line('log_format'), `must be "text" or "json", got "${fmt}"`);
    else if (f === 'json') logFormat = 'json';
  }
  const logPathRaw = root.string('log_path');
  const logRequests = root.bool('log_requests') ?? false;

  // the provider itself
  const oidc: { -readonly [K in keyof OidcConfig]: OidcConfig[K] } = { domains: [] };
  const domains = root.stringList('domains');
  if (domains !== undefined) oidc.domains = domains;
  const jwtIssuer = root.string('jwt_issuer');
  if (jwtIssuer !== undefined) oidc.jwtIssuer = jwtIssuer;
  const jwksUri = root.string('jwks_uri');
  if (jwksUri !== undefined) oidc.jwksUri = jwksUri;
  const prefix = root.string('server_path_prefix');
  if (prefix !== undefined) oidc.serverPathPrefix = prefix;
  const setKeyUse = root.bool('set_key_use');
  if (setKeyUse !== undefined) oidc.setKeyUse = setKeyUse;
  const allowInsecure = root.bool('allow_insecure_scheme');
  if (allowInsecure !== undefined) oidc.allowInsecureScheme = allowInsecure;
  const insecureAddr = root.string('insecure_addr');
  if (insecureAddr !== undefined) oidc.insecureAddr = insecureAddr;
  const socket = root.string('listen_socket_path');
  if (socket !== undefined) oidc.listenSocketPath = socket === '' ? '' : absPath(baseDir, socket);

  const acme = root.section('acme');
  if (acme !== undefined) {
    const cacheDir = acme.string('cache_dir');
    const directoryUrl = acme.string('directory_url');
    oidc.acme = {
      email: acme.string('email') ?? '',
      tosAccepted: acme.bool('tos_accepted') ?? false,
      // "" disables the cache, as in SPIRE
      ...(cacheDir === undefined ? {} : { cacheDir: cacheDir === '' ? '' : absPath(baseDir, cacheDir) }),
      ...(directoryUrl === undefined ? {} : { directoryUrl }),
    };
    acme.done();
  }

  const scf = root.section('serving_cert_file');
  if (scf !== undefined) {
    const certFilePath = scf.string('cert_file_path') ?? '';
    const keyFilePath = scf.string('key_file_path') ?? '';
    const addr = scf.string('addr');
    const sync = scf.duration('file_sync_interval');
    if (sync !== undefined && sync <= 0) p.add('serving_cert_file.file_sync_interval', scf.lineOf('file_sync_interval'), 'must be positive');
    oidc.servingCertFile = {
      certFilePath: certFilePath === '' ? '' : absPath(baseDir, certFilePath),
      keyFilePath: keyFilePath === '' ? '' : absPath(baseDir, keyFilePath),
      ...(addr === undefined ? {} : { addr }),
      ...(sync === undefined || sync <= 0 ? {} : { fileSyncIntervalMs: sync }),
    };
    scf.done();
  }

  const hc = root.section('health_checks');
  if (hc !== undefined) {
    const port = hc.number('bind_port', { integer: true, min: 0, max: 65535 });
    const readyPath = hc.string('ready_path');
    const livePath = hc.string('live_path');
    oidc.healthChecks = {
      addr: `:${port ?? 8008}`,
      ...(readyPath === undefined ? {} : { readyPath }),
      ...(livePath === undefined ? {} : { livePath }),
    };
    hc.done();
  }

  // key source: exactly one of server_api, workload_api, file
  const sources: KeySourceConfig[] = [];
  const present = ['server_api', 'workload_api', 'file'].filter((k) => root.has(k));
  const serverApi = root.section('server_api');
  if (serverApi !== undefined) {
    const address = required(serverApi, 'address', p);
    let socketPath = '';
    if (address !== undefined) {
      const sp = unixSocketPathOf(address);
      if (sp === undefined)
        p.add(
          'server_api.address',
          serverApi.lineOf('address'),
          `must be a unix socket address like "unix:///tmp/spire-server/private/api.sock", got "${address}"`,
        );
      else socketPath = absPath(baseDir, sp);
    }
    serverApi.unimplemented('experimental', 'its Windows named pipe settings have no effect here');
    sources.push({ kind: 'server_api', socketPath, pollIntervalMs: pollInterval(serverApi, p) });
    serverApi.done();
  }
  const workloadApi = root.section('workload_api');
  if (workloadApi !== undefined) {
    const raw = required(workloadApi, 'socket_path', p);
    const td = required(workloadApi, 'trust_domain', p);
    let trustDomain = '';
    if (td !== undefined) {
      try {
        trustDomain = TrustDomain.parse(td).name;
      } catch (e) {
        p.add('workload_api.trust_domain', workloadApi.lineOf('trust_domain'), (e as Error).message);
      }
    }
    let socketPath = '';
    if (raw !== undefined) {
      const sp = raw.startsWith('unix:') ? unixSocketPathOf(raw) : raw;
      if (sp === undefined) p.add('workload_api.socket_path', workloadApi.lineOf('socket_path'), `must be a socket path, got "${raw}"`);
      else socketPath = absPath(baseDir, sp);
    }
    workloadApi.unimplemented('experimental', 'its Windows named pipe settings have no effect here');
    sources.push({ kind: 'workload_api', socketPath, trustDomain, pollIntervalMs: pollInterval(workloadApi, p) });
    workloadApi.done();
  }
  const file = root.section('file');
  if (file !== undefined) {
    const path = required(file, 'path', p);
    sources.push({ kind: 'file', path: path === undefined ? '' : absPath(baseDir, path), pollIntervalMs: pollInterval(file, p) });
    file.done();
  }
  if (present.length === 0) {
    p.add('server_api', doc.line, 'exactly one of the server_api, workload_api, or file sections must be configured');
  } else if (present.length > 1) {
    const second = present[1] as string;
    p.add(second, line(second), `cannot be combined with ${present[0] as string}: the server_api, workload_api, and file sections are mutually exclusive`);
  }

  root.unimplemented('experimental', 'its Windows named pipe listener settings have no effect here');
  root.done();

  // The provider's own checks, reported with the file's key names and lines. Keys already
  // reported above (wrong type, unknown) are not reported twice.
  const reported = new Set(p.list.map((m) => /^.*?: ([a-z_.[\]0-9]+) \(line/.exec(m)?.[1]).filter((x): x is string => x !== undefined));
  try {
    validateOidcConfig(oidc);
  } catch (e) {
    if (!isZtwimError(e, 'ERR_CONFIG')) throw e;
    const list = (e.fields?.problems as readonly string[] | undefined) ?? [e.message];
    for (const raw of list) {
      const m = /^([^:]+): (.*)$/s.exec(raw);
      const field = toFileNames(m?.[1] ?? '');
      const msg = toFileNames(m?.[2] ?? raw);
      const name = field === 'listener' ? 'insecure_addr' : field;
      if (reported.has(name)) continue;
      const top = name.split(/[.[]/)[0] ?? name;
      const ln = root.has(top) ? line(top) : doc.line;
      if (field === 'listener') p.add('listener', ln, 'one of insecure_addr, listen_socket_path, serving_cert_file or acme must be configured');
      else p.add(name, ln, msg);
    }
  }
  throwIfProblems(p);
  const keySource = sources[0] as KeySourceConfig;
  return {
    oidc,
    keySource,
    logLevel,
    logFormat,
    logPath: logPathRaw === undefined || logPathRaw === '' ? undefined : absPath(baseDir, logPathRaw),
    logRequests,
    warnings: [...p.warnings],
  };
}
