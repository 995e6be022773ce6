// PostgreSQL connection strings as libpq reads them: the URL form (`postgres://user@host/db?sslmode=...`)
// and the keyword/value form of SPIRE's docs (`dbname=postgres user=postgres host=127.0.0.1 sslmode=disable`).
// `pg` (and pg-connection-string, which it ships) reads only URLs: a keyword/value string becomes a
// relative URL on the dummy host "base" (`getaddrinfo ENOTFOUND base`). Both forms are parsed here
// into one keyword map, so they mean the same thing, and libpq's sslmode values are mapped onto
// Node's TLS options in one place.
//
// Several hosts are libpq's as well (`host=a,b port=1,2` and `postgresql://a:1,b:2/db`), with
// `target_session_attrs` saying which of them a session may use and `load_balance_hosts` the order
// they are tried in: the result is one connection config per host (see host-pool.ts for the
// choosing, which pg does not do either).
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { ZtwimError } from '@ztwim/core';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** libpq keywords ztwim passes on to `pg`; any other is refused by name, as libpq does. */
const KEYWORDS = new Set([
  'host',
  'port',
  'dbname',
  'user',
  'password',
  'options',
  'application_name',
  'client_encoding',
  'connect_timeout',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslpassword',
  'target_session_attrs',
  'load_balance_hosts',
]);

/** libpq's target_session_attrs: which server a session may be opened on. */
export const TARGET_SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'] as const;
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number];
/** libpq's load_balance_hosts: the hosts in the given order, or in a random order per choice. */
export const LOAD_BALANCE_HOSTS = ['disable', 'random'] as const;
export type LoadBalanceHosts = (typeof LOAD_BALANCE_HOSTS)[number];

/** What `pg.Pool` takes, plus the sslmode it came from (allow/prefer need a probe at connect). */
export interface PgConnectionConfig {
  readonly host?: string;
  readonly port?: number;
  readonly database?: string;
  readonly user?: string;
  readonly password?: string;
  readonly options?: string;
  readonly application_name?: string;
  readonly client_encoding?: string;
  readonly connectionTimeoutMillis?: number;
  readonly ssl: false | ConnectionOptions;
  readonly sslmode: SslMode;
}

/** A connection string: one connection config per host, in the order given, and how to choose among them. */
export interface PgConnectionSpec {
  /** At least one. */
  readonly hosts: readonly PgConnectionConfig[];
  readonly targetSessionAttrs: TargetSessionAttrs;
  readonly loadBalanceHosts: LoadBalanceHosts;
}

const fail = (message: string): never => {
  throw new ZtwimError('ERR_CONFIG', `datastore: postgres connection_string: ${message}`);
};

/** True for libpq's URI designators; anything else is the keyword/value form. */
export function isUrlForm(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s.trim());
}

/**
 * libpq's keyword/value syntax: `key = value` pairs separated by whitespace; a value is either
 * unquoted (ends at whitespace) or in single quotes; in both, a backslash takes the next character
 * literally (`\'`, `\\`). Written here because no npm package parses this form.
 */
export function parseKeywordValue(s: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const ws = (): void => {
    while (i < s.length && /\s/.test(s[i] as string)) i++;
  };
  for (;;) {
    ws();
    if (i >= s.length) return out;
    const start = i;
    while (i < s.length && s[i] !== '=' && !/\s/.test(s[i] as string)) i++;
    const key = s.slice(start, i);
    ws();
    if (s[i] !== '=') fail(`missing "=" after "${key}" in keyword/value form`);
    i++;
    ws();
    let value = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= s.length) fail(`unterminated quoted value for "${key}"`);
        const c = s[i] as string;
        if (c === "'") {
          i++;
          break;
        }
        if (c === '\\' && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < s.length && !/\s/.test(s[i] as string)) {
        if (s[i] === '\\' && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else value += s[i++];
      }
    }
    out.set(key, value);
  }
}

const URL_INVALID = 'not a valid postgres:// URL (the value is not repeated here: it may hold a password)';

/**
 * The host list of a URL's authority (`h1:p1,[::1]:p2,h3`) as libpq's comma-separated `host` and
 * `port` values. WHATWG URL parsing takes one host only, so the list is split here and the URL is
 * parsed with a single placeholder host in its place.
 */
function splitUrlHosts(list: string): { host: string; port: string } {
  const hosts: string[] = [];
  const ports: string[] = [];
  for (const spec of list.split(',')) {
    const m = /^(\[[^\]]*\]|[^:[\]]*)(?::([^:]*))?$/.exec(spec);
    if (m === null) return fail(`${URL_INVALID}: cannot read host "${spec}" of the host list`);
    hosts.push(decodeURIComponent((m[1] ?? '').replace(/^\[(.*)\]$/, '$1')));
    ports.push(m[2] ?? '');
  }
  return { host: hosts.join(','), port: ports.every((p) => p === '') ? '' : ports.join(',') };
}

/** The URL form as the same keywords: user, password, host, port, dbname from the path, the query as keywords. */
export function parseUrlForm(s: string): Map<string, string> {
  let text = s.trim();
  // `scheme://[userinfo@]hostlist[/db][?query]`: a list of several hosts is taken out first.
  const auth = /^(postgres(?:ql)?:\/\/)((?:[^@/?#]*@)?)([^/?#]*)(.*)$/i.exec(text);
  let hostList: { host: string; port: string } | undefined;
  if (auth !== null && (auth[3] ?? '').includes(',')) {
    hostList = splitUrlHosts(auth[3] ?? '');
    text = `${auth[1] ?? ''}${auth[2] ?? ''}several-hosts${auth[4] ?? ''}`;
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return fail(URL_INVALID);
  }
  const out = new Map<string, string>();
  if (u.username !== '') out.set('user', decodeURIComponent(u.username));
  if (u.password !== '') out.set('password', decodeURIComponent(u.password));
  if (hostList !== undefined) {
    out.set('host', hostList.host);
    if (hostList.port !== '') out.set('port', hostList.port);
  } else {
    if (u.hostname !== '') out.set('host', decodeURIComponent(u.hostname).replace(/^\[(.+)\]$/, '$1'));
    if (u.port !== '') out.set('port', u.port);
  }
  const db = decodeURIComponent(u.pathname.slice(1));
  if (db !== '') out.set('dbname', db);
  for (const [k, v] of u.searchParams) out.set(k, v);
  return out;
}

function readPem(keyword: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    return fail(`${keyword}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/** The list of a multi-valued keyword (`host=a,b`), or [undefined] when it is not set. */
function listOf(kv: ReadonlyMap<string, string>, key: string): Array<string | undefined> {
  const v = kv.get(key);
  return v === undefined ? [undefined] : v.split(',');
}

/**
 * Either form → `pg` options, one per host. sslmode as libpq: disable and allow start without TLS;
 * prefer (libpq's default) and require use TLS without checking the certificate (require with
 * sslrootcert checks the chain as verify-ca does); verify-ca checks the chain against sslrootcert;
 * verify-full also checks the host name. allow/prefer fall back at connect (see sslFallback).
 * Several hosts as libpq: `host` is a comma-separated list (an empty item is the default host),
 * `port` is one port for all of them or one per host.
 */
export function parsePgConnectionString(s: string): PgConnectionSpec {
  const kv = isUrlForm(s) ? parseUrlForm(s) : parseKeywordValue(s);
  for (const k of kv.keys()) if (!KEYWORDS.has(k)) fail(`invalid connection option "${k}" (supported: ${[...KEYWORDS].join(', ')})`);
  const modeRaw = kv.get('sslmode') ?? 'prefer';
  if (!(SSL_MODES as readonly string[]).includes(modeRaw)) fail(`invalid sslmode value: "${modeRaw}" (use ${SSL_MODES.join(', ')})`);
  const sslmode = modeRaw as SslMode;
  const attrs = kv.get('target_session_attrs') ?? 'any';
  if (!(TARGET_SESSION_ATTRS as readonly string[]).includes(attrs)) {
    fail(`invalid target_session_attrs value: "${attrs}" (use ${TARGET_SESSION_ATTRS.join(', ')})`);
  }
  const balance = kv.get('load_balance_hosts') ?? 'disable';
  if (!(LOAD_BALANCE_HOSTS as readonly string[]).includes(balance))
    fail(`invalid load_balance_hosts value: "${balance}" (use ${LOAD_BALANCE_HOSTS.join(', ')})`);
  const hosts = listOf(kv, 'host');
  const portsRaw = listOf(kv, 'port');
  if (portsRaw.length !== 1 && portsRaw.length !== hosts.length) {
    fail(`could not match ${portsRaw.length} port numbers (port) to ${hosts.length} hosts (host)`);
  }
  const ports = portsRaw.map((raw) => {
    const port = raw === undefined || raw === '' ? undefined : Number(raw);
    if (port !== undefined && (!/^\d+$/.test(raw ?? '') || port < 1 || port > 65535)) fail(`invalid port number: "${raw}"`);
    return port;
  });
  const timeoutRaw = kv.get('connect_timeout');
  const timeout = timeoutRaw === undefined ? undefined : Number(timeoutRaw);
  if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) fail(`invalid connect_timeout value: "${timeoutRaw}"`);

  const tls: { -readonly [K in keyof ConnectionOptions]: ConnectionOptions[K] } = {};
  const rootcert = kv.get('sslrootcert');
  if (rootcert !== undefined && rootcert !== '') tls.ca = readPem('sslrootcert', rootcert);
  const cert = kv.get('sslcert');
  if (cert !== undefined && cert !== '') tls.cert = readPem('sslcert', cert);
  const key = kv.get('sslkey');
  if (key !== undefined && key !== '') tls.key = readPem('sslkey', key);
  const passphrase = kv.get('sslpassword');
  if (passphrase !== undefined) tls.passphrase = passphrase;
  if (sslmode === 'verify-ca' && tls.ca === undefined) fail('sslmode verify-ca needs sslrootcert (the CA certificate file to check the server against)');
  const skipHostname = (): undefined => undefined;
  const sslFor = (host: string | undefined): false | ConnectionOptions => {
    switch (sslmode) {
      case 'disable':
      case 'allow':
        return false;
      case 'prefer':
        return { ...tls, rejectUnauthorized: false };
      case 'require':
        // libpq: with a root certificate, require behaves as verify-ca
        return tls.ca === undefined ? { ...tls, rejectUnauthorized: false } : { ...tls, rejectUnauthorized: true, checkServerIdentity: skipHostname };
      case 'verify-ca':
        return { ...tls, rejectUnauthorized: true, checkServerIdentity: skipHostname };
      case 'verify-full':
        return { ...tls, rejectUnauthorized: true, ...(host === undefined || host.startsWith('/') ? {} : { servername: host }) };
    }
  };
  const str = (k: string): Record<string, string> => {
    const v = kv.get(k);
    return v === undefined ? {} : { [k]: v };
  };
  const common = {
    ...(kv.get('dbname') === undefined ? {} : { database: kv.get('dbname') as string }),
    ...str('user'),
    ...str('password'),
    ...str('options'),
    ...str('application_name'),
    ...str('client_encoding'),
    ...(timeout === undefined || timeout === 0 ? {} : { connectionTimeoutMillis: Math.max(2, timeout) * 1000 }),
  };
  return {
    hosts: hosts.map((host, i): PgConnectionConfig => {
      const port = ports.length === 1 ? ports[0] : ports[i];
      return {
        ...(host === undefined || host === '' ? {} : { host }),
        ...(port === undefined ? {} : { port }),
        ...common,
        ssl: sslFor(host === '' ? undefined : host),
        sslmode,
      };
    }),
    targetSessionAttrs: attrs as TargetSessionAttrs,
    loadBalanceHosts: balance as LoadBalanceHosts,
  };
}

/** `host:port` of one host of a connection string, as logs and errors name it. */
export function hostLabel(c: PgConnectionConfig): string {
  const host = c.host ?? 'localhost';
  return `${host.includes(':') ? `[${host}]` : host}:${c.port ?? 5432}`;
}

/**
 * libpq's second attempt for allow/prefer: prefer falls back to no TLS when the server does not
 * support it; allow retries with TLS when the server refuses a connection without it.
 */
export function sslFallback(cfg: PgConnectionConfig, err: unknown): false | ConnectionOptions | undefined {
  const msg = err instanceof Error ? err.message : String(err);
  if (cfg.sslmode === 'prefer' && /does not support SSL/i.test(msg)) return false;
  if (cfg.sslmode === 'allow' && /no encryption|SSL off|requires SSL/i.test(msg)) return { rejectUnauthorized: false };
  return undefined;
}
