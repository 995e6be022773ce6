// The console's settings as a config file writes them: the `console { }` block of a server config
// (`ztwim server run` starts the console beside the server when it is there), or of a file given
// to `ztwim console -config`. The keys follow SPIRE's spelling (bind_address, bind_port, and the
// OIDC discovery provider's serving_cert_file { cert_file_path key_file_path }); `oidc { }` is
// Tornjak's Keycloak option for any OpenID Provider. Every problem names its key and line.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { configError, type Problems, type Section } from '@ztwim/core';
import { DEFAULT_SESSION_LIFETIME_MS } from './auth.ts';

export interface ConsoleOidcConfig {
  /** The OpenID Provider's issuer URL; its discovery document is `<issuer>/.well-known/openid-configuration`. */
  readonly issuer: string;
  readonly clientId: string;
  /** A confidential client's secret (client_secret_basic); none: a public client (PKCE only). */
  readonly clientSecretFile?: string;
  /** Where the provider sends the browser back: `<console URL>/oidc/callback` unless set. */
  readonly redirectUri?: string;
  /** Scopes asked for; `openid` is always among them. */
  readonly scopes: readonly string[];
  /** The ID token claim (a dotted path, e.g. `realm_access.roles`) whose values give the role. */
  readonly roleClaim: string;
  readonly adminValues: readonly string[];
  readonly viewerValues: readonly string[];
  /** Sent to the provider's end_session_endpoint at logout (it must be registered there). */
  readonly postLogoutRedirectUri?: string;
}

export interface ConsoleConfig {
  readonly bindAddress: string;
  readonly bindPort: number;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly sessionLifetimeMs: number;
  /** Files holding the login tokens; unset: a random token, printed or logged once at start. */
  readonly adminTokenFile?: string;
  readonly viewerTokenFile?: string;
  /** Login tokens accepted at all (`token_login_enabled`); false leaves OIDC as the only login. */
  readonly tokenLogin: boolean;
  readonly oidc?: ConsoleOidcConfig;
}

export const CONSOLE_DEFAULTS = {
  bindAddress: '127.0.0.1',
  bindPort: 8090,
  sessionLifetimeMs: DEFAULT_SESSION_LIFETIME_MS,
  scopes: ['openid', 'profile'],
  roleClaim: 'groups',
  adminValues: ['ztwim-admins'],
  viewerValues: ['ztwim-viewers'],
} as const;

export const OIDC_CALLBACK_PATH = '/oidc/callback';

/** 127.0.0.0/8, ::1 and `localhost`: addresses only this host reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || h.startsWith('::ffff:127.');
  return false;
}

/** Why the console refuses to serve plain http on `host`, or undefined when it may. */
export function plaintextRefusal(host: string): string | undefined {
  if (isLoopbackHost(host)) return undefined;
  return (
    `"${host}" is not a loopback address, and without TLS the console would send login tokens and session cookies ` +
    'in clear text over the network: give it a certificate and key, or bind it to 127.0.0.1'
  );
}

/** Why `raw` cannot be the issuer or a redirect URL, or undefined: https, or http on a loopback host only. */
export function urlProblem(raw: string, what: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `"${raw}" is not a URL`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `"${raw}": ${what} must be an https URL`;
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) return `"${raw}": ${what} must be https (plain http only on a loopback address)`;
  if (u.hash !== '' || u.search !== '') return `"${raw}": ${what} takes no query or fragment`;
  return undefined;
}

/**
 * Reads `console { }` from a config's root; undefined when the block is absent. Problems go to
 * the section's problem list, so `validate` reports them with the server's own.
 */
export function readConsoleConfig(root: Section, baseDir: string): ConsoleConfig | undefined {
  const c = root.section('console');
  if (c === undefined) return undefined;
  const p = c.p;
  const at = (key: string): string => `${c.path}.${key}`;
  const bindAddress = c.string('bind_address') ?? CONSOLE_DEFAULTS.bindAddress;
  if (bindAddress === '') p.add(at('bind_address'), c.lineOf('bind_address'), 'must not be empty');
  const bindPort = c.number('bind_port', { integer: true, min: 0, max: 65535 }) ?? CONSOLE_DEFAULTS.bindPort;
  let tls: ConsoleConfig['tls'];
  const cert = c.section('serving_cert_file');
  if (cert !== undefined) {
    const certFile = cert.string('cert_file_path');
    const keyFile = cert.string('key_file_path');
    if (certFile === undefined || certFile === '') p.add(`${cert.path}.cert_file_path`, cert.lineOf('cert_file_path'), 'is required');
    if (keyFile === undefined || keyFile === '') p.add(`${cert.path}.key_file_path`, cert.lineOf('key_file_path'), 'is required');
    if (certFile !== undefined && keyFile !== undefined) tls = { certFile: resolve(baseDir, certFile), keyFile: resolve(baseDir, keyFile) };
    cert.done();
  }
  if (cert === undefined && bindAddress !== '') {
    const why = plaintextRefusal(bindAddress);
    if (why !== undefined) p.add(at('bind_address'), c.lineOf('bind_address'), `${why} (serving_cert_file { cert_file_path key_file_path })`);
  }
  const sessionLifetimeMs = c.duration('session_lifetime') ?? CONSOLE_DEFAULTS.sessionLifetimeMs;
  if (sessionLifetimeMs < 60_000) p.add(at('session_lifetime'), c.lineOf('session_lifetime'), 'must be at least 1m');
  const file = (key: string): string | undefined => {
    const v = c.string(key);
    if (v === '') p.add(at(key), c.lineOf(key), 'must not be empty (leave it out for a random token)');
    return v === undefined || v === '' ? undefined : resolve(baseDir, v);
  };
  const adminTokenFile = file('admin_token_file');
  const viewerTokenFile = file('viewer_token_file');
  const tokenLogin = c.bool('token_login_enabled') ?? true;
  const o = c.section('oidc');
  const oidc = o === undefined ? undefined : readOidc(o, bindAddress, baseDir);
  if (!tokenLogin && oidc === undefined)
    p.add(at('token_login_enabled'), c.lineOf('token_login_enabled'), 'is false and no oidc { } block is set: nobody could log in');
  if (!tokenLogin && (adminTokenFile !== undefined || viewerTokenFile !== undefined)) {
    p.warn(
      at('admin_token_file'),
      c.lineOf(adminTokenFile === undefined ? 'viewer_token_file' : 'admin_token_file'),
      'is not used: token_login_enabled is false',
    );
  }
  c.done();
  return {
    bindAddress,
    bindPort,
    ...(tls === undefined ? {} : { tls }),
    sessionLifetimeMs,
    ...(adminTokenFile === undefined ? {} : { adminTokenFile }),
    ...(viewerTokenFile === undefined ? {} : { viewerTokenFile }),
    tokenLogin,
    ...(oidc === undefined ? {} : { oidc }),
  };
}

function readOidc(o: Section, bindAddress: string, baseDir: string): ConsoleOidcConfig {
  const p: Problems = o.p;
  const at = (key: string): string => `${o.path}.${key}`;
  const required = (key: string): string => {
    const v = o.string(key);
    if (v === undefined || v === '') p.add(at(key), o.lineOf(key), 'is required');
    return v ?? '';
  };
  const issuer = required('issuer');
  if (issuer !== '') {
    const why = urlProblem(issuer, 'the issuer');
    if (why !== undefined) p.add(at('issuer'), o.lineOf('issuer'), why);
  }
  const clientId = required('client_id');
  const secret = o.string('client_secret_file');
  if (secret === '') p.add(at('client_secret_file'), o.lineOf('client_secret_file'), 'must not be empty (leave it out for a public client)');
  if (o.has('client_secret')) {
    o.ignore('client_secret');
    p.add(at('client_secret'), o.lineOf('client_secret'), 'is not read from the config: put the secret in a file and name it in client_secret_file');
  }
  const redirectUri = o.string('redirect_uri');
  if (redirectUri !== undefined) {
    const why = urlProblem(redirectUri, 'redirect_uri');
    if (why !== undefined) p.add(at('redirect_uri'), o.lineOf('redirect_uri'), why);
    else if (new URL(redirectUri).pathname !== OIDC_CALLBACK_PATH)
      p.add(at('redirect_uri'), o.lineOf('redirect_uri'), `must end in the console's ${OIDC_CALLBACK_PATH}`);
  } else if (!isLoopbackHost(bindAddress)) {
    p.add(
      at('redirect_uri'),
      o.lineOf('redirect_uri'),
      `is required when the console binds to "${bindAddress}" (the URL browsers reach it at, ending in ${OIDC_CALLBACK_PATH})`,
    );
  }
  const scopes = o.stringList('scopes') ?? [...CONSOLE_DEFAULTS.scopes];
  if (!scopes.includes('openid')) scopes.unshift('openid');
  const roleClaim = o.string('role_claim') ?? CONSOLE_DEFAULTS.roleClaim;
  if (roleClaim === '' || roleClaim.split('.').some((part) => part === ''))
    p.add(at('role_claim'), o.lineOf('role_claim'), `"${roleClaim}" is not a claim name or dotted path`);
  const adminValues = o.stringList('admin_values') ?? [...CONSOLE_DEFAULTS.adminValues];
  const viewerValues = o.stringList('viewer_values') ?? [...CONSOLE_DEFAULTS.viewerValues];
  if (adminValues.length === 0 && viewerValues.length === 0)
    p.add(at('admin_values'), o.lineOf('admin_values'), 'and viewer_values are both empty: no login would get a role');
  for (const v of [...adminValues, ...viewerValues]) if (v === '') p.add(at('admin_values'), o.lineOf('admin_values'), 'role values must not be empty');
  const both = adminValues.filter((v) => viewerValues.includes(v));
  if (both.length > 0) p.add(at('viewer_values'), o.lineOf('viewer_values'), `"${both[0]}" is both an admin and a viewer value`);
  const postLogout = o.string('post_logout_redirect_uri');
  if (postLogout !== undefined) {
    const why = urlProblem(postLogout, 'post_logout_redirect_uri');
    if (why !== undefined) p.add(at('post_logout_redirect_uri'), o.lineOf('post_logout_redirect_uri'), why);
  }
  o.done();
  return {
    issuer,
    clientId,
    ...(secret === undefined || secret === '' ? {} : { clientSecretFile: resolve(baseDir, secret) }),
    ...(redirectUri === undefined ? {} : { redirectUri }),
    scopes,
    roleClaim,
    adminValues,
    viewerValues,
    ...(postLogout === undefined ? {} : { postLogoutRedirectUri: postLogout }),
  };
}

/** A secret from a file (trimmed), with the file and the setting named when it cannot be read or is too short. */
export async function readSecretFile(path: string, setting: string, minLength: number): Promise<string> {
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (e) {
    throw configError(`${setting} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  if (text.length < minLength) throw configError(`${setting} ${path}: the file must hold at least ${minLength} characters`);
  return text;
}
