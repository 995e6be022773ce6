import { configError } from '@ztwim/core';
import { MAX_PUBLISHED_KEYS } from './jwk.ts';

/** Serve TLS with a certificate and key from files, re-read when they change. */
export interface ServingCertFileConfig {
  readonly certFilePath: string;
  readonly keyFilePath: string;
  /** Listen address, `host:port` or `:port`. Default `:443`. */
  readonly addr?: string;
  /** How often the files are checked for changes. Default 60 000 ms (SPIRE: 1m). */
  readonly fileSyncIntervalMs?: number;
}

/** Obtain and renew the serving certificate from an ACME CA (http-01 challenges). */
export interface AcmeConfig {
  /** Default: Let's Encrypt production. */
  readonly directoryUrl?: string;
  readonly email: string;
  readonly tosAccepted: boolean;
  /** Account key and certificates are kept here. Default `./.acme-cache`; `""` disables caching. */
  readonly cacheDir?: string;
  /** TLS listen address. Default `:443`. */
  readonly addr?: string;
  /** Where the http-01 challenge responder listens. Default `:80`. */
  readonly httpChallengeAddr?: string;
  /** Extra CA certificates (PEM) trusted when talking to the ACME directory (test CAs). */
  readonly directoryCaPem?: string;
  /** Renew when less than this fraction of the certificate's lifetime is left. Default 1/3. */
  readonly renewFraction?: number;
}

export interface HealthChecksConfig {
  /** Own listener for health (and metrics unless metrics.addr is set). Default `:8008`. */
  readonly addr?: string;
  readonly readyPath?: string;
  readonly livePath?: string;
}

export interface MetricsConfig {
  /** Own listener; without it metrics are served on the health listener. */
  readonly addr?: string;
  readonly path?: string;
}

/** The OIDC discovery provider's configuration (SPIRE's oidc-discovery-provider.conf, camelCased). */
export interface OidcConfig {
  /** Host names the discovery document is served for (required, at least one). */
  readonly domains: readonly string[];
  /** Issuer URL; becomes `issuer` verbatim and the base of `jwks_uri`. Without it both derive from the request. */
  readonly jwtIssuer?: string;
  /** Overrides `jwks_uri` in the discovery document. */
  readonly jwksUri?: string;
  /** Path prefix of both routes. Default `/`. */
  readonly serverPathPrefix?: string;
  /** Publish `"use":"sig"` on every key (Entra ID needs it). */
  readonly setKeyUse?: boolean;
  /** Allow an `http` issuer (only with insecureAddr or listenSocketPath). */
  readonly allowInsecureScheme?: boolean;
  readonly insecureAddr?: string;
  readonly listenSocketPath?: string;
  readonly servingCertFile?: ServingCertFileConfig;
  readonly acme?: AcmeConfig;
  readonly healthChecks?: HealthChecksConfig;
  readonly metrics?: MetricsConfig;
  /** Cap on published keys. Default 100. */
  readonly maxKeys?: number;
}

export interface ListenAddress {
  readonly host: string | undefined;
  readonly port: number;
}

export type ListenerConfig =
  | { readonly kind: 'insecure'; readonly addr: ListenAddress }
  | { readonly kind: 'socket'; readonly path: string }
  | {
      readonly kind: 'servingCertFile';
      readonly addr: ListenAddress;
      readonly certFilePath: string;
      readonly keyFilePath: string;
      readonly fileSyncIntervalMs: number;
    }
  | {
      readonly kind: 'acme';
      readonly addr: ListenAddress;
      readonly httpChallengeAddr: ListenAddress;
      readonly directoryUrl: string;
      readonly email: string;
      readonly cacheDir: string;
      readonly directoryCaPem: string | undefined;
      readonly renewFraction: number;
    };

/** A checked configuration with defaults applied. */
export interface ValidatedOidcConfig {
  readonly domains: readonly string[];
  readonly jwtIssuer: URL | undefined;
  /** jwtIssuer exactly as configured (the `issuer` member). */
  readonly issuer: string | undefined;
  readonly jwksUri: string | undefined;
  readonly serverPathPrefix: string;
  readonly setKeyUse: boolean;
  readonly allowInsecureScheme: boolean;
  readonly listener: ListenerConfig;
  readonly healthChecks: { readonly addr: ListenAddress; readonly readyPath: string; readonly livePath: string } | undefined;
  readonly metrics: { readonly addr: ListenAddress | undefined; readonly path: string } | undefined;
  readonly maxKeys: number;
}

export const LETS_ENCRYPT_DIRECTORY_URL = 'https://acme-v02.api.letsencrypt.org/directory';

const KNOWN_KEYS = new Set([
  'domains',
  'jwtIssuer',
  'jwksUri',
  'serverPathPrefix',
  'setKeyUse',
  'allowInsecureScheme',
  'insecureAddr',
  'listenSocketPath',
  'servingCertFile',
  'acme',
  'healthChecks',
  'metrics',
  'maxKeys',
]);

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why a host name cannot be an allowed domain, or undefined when it can. */
export function domainProblem(d: string): string | undefined {
  if (d === '') return 'must not be empty';
  if (d !== d.toLowerCase() || /[^\x21-\x7e]/.test(d)) return `"${d}" must already be lowercase punycode`;
  if (d.includes(':') || d.includes('/')) return `"${d}" must be a host name without scheme, port or path`;
  if (d.length > 253 || !d.split('.').every((l) => LABEL.test(l))) return `"${d}" is not a valid host name`;
  return undefined;
}

/** Parses `host:port`, `:port` or `[v6]:port`. */
export function parseListenAddress(s: string): ListenAddress | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  if (m === null) return `"${s}" must be host:port or :port`;
  const port = Number(m[3]);
  if (port > 65535) return `"${s}" has a port out of range`;
  const host = m[1] ?? m[2];
  return { host: host === '' || host === undefined ? undefined : host, port };
}

type Problem = string;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the issuer URL; returns the problem (without the field name) or the parsed URL. */
export function issuerUrlProblem(raw: string, allowInsecureScheme: boolean): string | URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'must be a URL with a scheme and host';
  }
  if (u.host === '' || !/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]/.test(raw)) return 'must be a URL with a scheme and host';
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `scheme "${u.protocol.slice(0, -1)}" is not supported (https only)`;
  if (u.protocol === 'http:' && !allowInsecureScheme) return 'must use https (http needs allowInsecureScheme)';
  if (u.username !== '' || u.password !== '') return 'must not contain user info';
  if (u.search !== '' || raw.includes('?')) return 'must not contain a query';
  if (u.hash !== '' || raw.includes('#')) return 'must not contain a fragment';
  if (/\s/.test(raw)) return 'must not contain whitespace';
  if (raw.length > 600) return 'must be at most 600 characters';
  return u;
}

/**
 * Validates an OidcConfig (from code, JSON or a parsed config file) in one pass and applies
 * defaults. Every problem names its field; all problems are reported together as one
 * ZtwimError (ERR_CONFIG).
 */
export function validateOidcConfig(input: unknown): ValidatedOidcConfig {
  const problems: Problem[] = [];
  const add = (field: string, msg: string): void => {
    problems.push(`${field}: ${msg}`);
  };
  if (!isObject(input)) throw configError('oidc config: must be an object');
  const c = input;
  for (const k of Object.keys(c)) if (!KNOWN_KEYS.has(k)) add(k, 'unknown setting');

  const str = (obj: Record<string, unknown>, key: string, field: string): string | undefined => {
    const v = obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      add(field, 'must be a string');
      return undefined;
    }
    return v;
  };
  const bool = (obj: Record<string, unknown>, key: string, field: string): boolean | undefined => {
    const v = obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') {
      add(field, 'must be true or false');
      return undefined;
    }
    return v;
  };
  const posInt = (obj: Record<string, unknown>, key: string, field: string): number | undefined => {
    const v = obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      add(field, 'must be a positive integer');
      return undefined;
    }
    return v;
  };
  const addr = (raw: string | undefined, dflt: string, field: string): ListenAddress => {
    const r = parseListenAddress(raw ?? dflt);
    if (typeof r === 'string') {
      add(field, r);
      return { host: undefined, port: 0 };
    }
    return r;
  };
  const section = (key: string): Record<string, unknown> | undefined => {
    const v = c[key];
    if (v === undefined) return undefined;
    if (!isObject(v)) {
      add(key, 'must be an object');
      return undefined;
    }
    return v;
  };
  const unknownIn = (obj: Record<string, unknown>, prefix: string, known: readonly string[]): void => {
    for (const k of Object.keys(obj)) if (!known.includes(k)) add(`${prefix}.${k}`, 'unknown setting');
  };

  // domains
  const domains: string[] = [];
  const rawDomains = c.domains;
  if (rawDomains === undefined || (Array.isArray(rawDomains) && rawDomains.length === 0)) {
    add('domains', 'at least one domain must be configured');
  } else if (!Array.isArray(rawDomains)) {
    add('domains', 'must be a list of host names');
  } else {
    rawDomains.forEach((d: unknown, i) => {
      if (typeof d !== 'string') {
        add(`domains[${i}]`, 'must be a string');
        return;
      }
      const p = domainProblem(d);
      if (p !== undefined) add(`domains[${i}]`, p);
      else if (!domains.includes(d)) domains.push(d);
    });
  }

  const allowInsecureScheme = bool(c, 'allowInsecureScheme', 'allowInsecureScheme') ?? false;
  const setKeyUse = bool(c, 'setKeyUse', 'setKeyUse') ?? false;

  // issuer
  let jwtIssuer: URL | undefined;
  const issuer = str(c, 'jwtIssuer', 'jwtIssuer');
  if (issuer !== undefined) {
    const r = issuerUrlProblem(issuer, allowInsecureScheme);
    if (typeof r === 'string') add('jwtIssuer', r);
    else jwtIssuer = r;
  }
  const jwksUri = str(c, 'jwksUri', 'jwksUri');
  if (jwksUri !== undefined) {
    const r = issuerUrlProblem(jwksUri, allowInsecureScheme);
    if (typeof r === 'string') add('jwksUri', r);
  }

  let serverPathPrefix = str(c, 'serverPathPrefix', 'serverPathPrefix') ?? '/';
  if (!serverPathPrefix.startsWith('/') || /[?#\s]/.test(serverPathPrefix)) {
    add('serverPathPrefix', 'must be a path starting with "/"');
  }
  if (!serverPathPrefix.endsWith('/')) serverPathPrefix += '/';

  // listeners
  const insecureAddr = str(c, 'insecureAddr', 'insecureAddr');
  const socketPath = str(c, 'listenSocketPath', 'listenSocketPath');
  const certSec = section('servingCertFile');
  const acmeSec = section('acme');
  const chosen = [
    insecureAddr !== undefined ? 'insecureAddr' : undefined,
    socketPath !== undefined ? 'listenSocketPath' : undefined,
    c.servingCertFile !== undefined ? 'servingCertFile' : undefined,
    c.acme !== undefined ? 'acme' : undefined,
  ].filter((x): x is string => x !== undefined);
  if (chosen.length === 0) {
    add('listener', 'one of insecureAddr, listenSocketPath, servingCertFile or acme must be configured');
  } else if (chosen.length > 1) {
    add(chosen[1] as string, `cannot be combined with ${chosen[0] as string}`);
  }
  if (allowInsecureScheme && insecureAddr === undefined && socketPath === undefined) {
    add('allowInsecureScheme', 'is only allowed with insecureAddr or listenSocketPath');
  }

  let listener: ListenerConfig = { kind: 'insecure', addr: { host: undefined, port: 0 } };
  if (insecureAddr !== undefined) {
    listener = { kind: 'insecure', addr: addr(insecureAddr, '', 'insecureAddr') };
  } else if (socketPath !== undefined) {
    if (socketPath === '') add('listenSocketPath', 'must not be empty');
    listener = { kind: 'socket', path: socketPath };
  } else if (certSec !== undefined) {
    unknownIn(certSec, 'servingCertFile', ['certFilePath', 'keyFilePath', 'addr', 'fileSyncIntervalMs']);
    const certFilePath = str(certSec, 'certFilePath', 'servingCertFile.certFilePath');
    const keyFilePath = str(certSec, 'keyFilePath', 'servingCertFile.keyFilePath');
    if (certFilePath === undefined || certFilePath === '') add('servingCertFile.certFilePath', 'is required');
    if (keyFilePath === undefined || keyFilePath === '') add('servingCertFile.keyFilePath', 'is required');
    listener = {
      kind: 'servingCertFile',
      addr: addr(str(certSec, 'addr', 'servingCertFile.addr'), ':443', 'servingCertFile.addr'),
      certFilePath: certFilePath ?? '',
      keyFilePath: keyFilePath ?? '',
      fileSyncIntervalMs: posInt(certSec, 'fileSyncIntervalMs', 'servingCertFile.fileSyncIntervalMs') ?? 60_000,
    };
  } else if (acmeSec !== undefined) {
    unknownIn(acmeSec, 'acme', ['directoryUrl', 'email', 'tosAccepted', 'cacheDir', 'addr', 'httpChallengeAddr', 'directoryCaPem', 'renewFraction']);
    const email = str(acmeSec, 'email', 'acme.email');
    if (email === undefined || email === '') add('acme.email', 'is required');
    else if (!/^[^@\s]+@[^@\s]+$/.test(email)) add('acme.email', `"${email}" is not an email address`);
    if (bool(acmeSec, 'tosAccepted', 'acme.tosAccepted') !== true) {
      add('acme.tosAccepted', 'the ACME terms of service must be accepted (tosAccepted: true)');
    }
    const directoryUrl = str(acmeSec, 'directoryUrl', 'acme.directoryUrl') ?? LETS_ENCRYPT_DIRECTORY_URL;
    const d = issuerUrlProblem(directoryUrl, false);
    if (typeof d === 'string') add('acme.directoryUrl', d);
    const rf = acmeSec.renewFraction;
    if (rf !== undefined && (typeof rf !== 'number' || !(rf > 0 && rf < 1))) {
      add('acme.renewFraction', 'must be a number between 0 and 1');
    }
    listener = {
      kind: 'acme',
      addr: addr(str(acmeSec, 'addr', 'acme.addr'), ':443', 'acme.addr'),
      httpChallengeAddr: addr(str(acmeSec, 'httpChallengeAddr', 'acme.httpChallengeAddr'), ':80', 'acme.httpChallengeAddr'),
      directoryUrl,
      email: email ?? '',
      cacheDir: str(acmeSec, 'cacheDir', 'acme.cacheDir') ?? './.acme-cache',
      directoryCaPem: str(acmeSec, 'directoryCaPem', 'acme.directoryCaPem'),
      renewFraction: typeof rf === 'number' ? rf : 1 / 3,
    };
  }

  // health and metrics
  let healthChecks: ValidatedOidcConfig['healthChecks'];
  const hSec = section('healthChecks');
  if (hSec !== undefined) {
    unknownIn(hSec, 'healthChecks', ['addr', 'readyPath', 'livePath']);
    const readyPath = str(hSec, 'readyPath', 'healthChecks.readyPath') ?? '/ready';
    const livePath = str(hSec, 'livePath', 'healthChecks.livePath') ?? '/live';
    if (!readyPath.startsWith('/')) add('healthChecks.readyPath', 'must start with "/"');
    if (!livePath.startsWith('/')) add('healthChecks.livePath', 'must start with "/"');
    healthChecks = {
      addr: addr(str(hSec, 'addr', 'healthChecks.addr'), ':8008', 'healthChecks.addr'),
      readyPath,
      livePath,
    };
  }
  let metrics: ValidatedOidcConfig['metrics'];
  const mSec = section('metrics');
  if (mSec !== undefined) {
    unknownIn(mSec, 'metrics', ['addr', 'path']);
    const path = str(mSec, 'path', 'metrics.path') ?? '/metrics';
    if (!path.startsWith('/')) add('metrics.path', 'must start with "/"');
    const rawAddr = str(mSec, 'addr', 'metrics.addr');
    if (rawAddr === undefined && healthChecks === undefined) {
      add('metrics.addr', 'is required unless healthChecks is configured');
    }
    if (healthChecks !== undefined && rawAddr === undefined && [healthChecks.readyPath, healthChecks.livePath].includes(path)) {
      add('metrics.path', 'must differ from the health check paths');
    }
    metrics = { addr: rawAddr === undefined ? undefined : addr(rawAddr, '', 'metrics.addr'), path };
  }

  const maxKeys = posInt(c, 'maxKeys', 'maxKeys') ?? MAX_PUBLISHED_KEYS;
  if (maxKeys > MAX_PUBLISHED_KEYS) add('maxKeys', `must be at most ${MAX_PUBLISHED_KEYS} (relying parties keep only that many keys)`);

  if (problems.length > 0) {
    throw configError(problems.length === 1 ? (problems[0] as string) : `${problems.length} problems: ${problems.join('; ')}`, {
      fields: { problems },
    });
  }
  return {
    domains,
    jwtIssuer,
    issuer: jwtIssuer === undefined ? undefined : issuer,
    jwksUri,
    serverPathPrefix,
    setKeyUse,
    allowInsecureScheme,
    listener,
    healthChecks,
    metrics,
    maxKeys,
  };
}
