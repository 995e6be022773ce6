// PostgreSQL connection strings as libpq reads them: the URL form (`postgres://user@host/db?sslmode=...`)
// and the keyword/value form of SPIRE's docs (`dbname=postgres user=postgres host=127.0.0.1 sslmode=disable`).
// `pg` (and pg-connection-string, which it ships) reads only URLs: a keyword/value string becomes a
// relative URL on the dummy host "base" (`getaddrinfo ENOTFOUND base`). Both forms are parsed here
// into one keyword map, so they mean the same thing, and libpq's sslmode values are mapped onto
// Node's TLS options in one place.
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
]);

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

/** The URL form as the same keywords: user, password, host, port, dbname from the path, the query as keywords. */
export function parseUrlForm(s: string): Map<string, string> {
  let u: URL;
  try {
    u = new URL(s.trim());
  } catch {
    return fail('not a valid postgres:// URL (the value is not repeated here: it may hold a password)');
  }
  const out = new Map<string, string>();
  if (u.username !== '') out.set('user', decodeURIComponent(u.username));
  if (u.password !== '') out.set('password', decodeURIComponent(u.password));
  if (u.hostname !== '') out.set('host', decodeURIComponent(u.hostname).replace(/^\[(.+)\]$/, '$1'));
  if (u.port !== '') out.set('port', u.port);
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

/**
 * Either form → `pg` options. sslmode as libpq: disable and allow start without TLS; prefer
 * (libpq's default) and require use TLS without checking the certificate (require with
 * sslrootcert checks the chain as verify-ca does); verify-ca checks the chain against sslrootcert;
 * verify-full also checks the host name. allow/prefer fall back at connect (see sslFallback).
 */
export function parsePgConnectionString(s: string): PgConnectionConfig {
  const kv = isUrlForm(s) ? parseUrlForm(s) : parseKeywordValue(s);
  for (const k of kv.keys()) if (!KEYWORDS.has(k)) fail(`invalid connection option "${k}" (supported: ${[...KEYWORDS].join(', ')})`);
  const modeRaw = kv.get('sslmode') ?? 'prefer';
  if (!(SSL_MODES as readonly string[]).includes(modeRaw)) fail(`invalid sslmode value: "${modeRaw}" (use ${SSL_MODES.join(', ')})`);
  const sslmode = modeRaw as SslMode;
  const portRaw = kv.get('port');
  const port = portRaw === undefined || portRaw === '' ? undefined : Number(portRaw);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) fail(`invalid port number: "${portRaw}"`);
  const timeoutRaw = kv.get('connect_timeout');
  const timeout = timeoutRaw === undefined ? undefined : Number(timeoutRaw);
  if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) fail(`invalid connect_timeout value: "${timeoutRaw}"`);
  const host = kv.get('host');
  if (host !== undefined && host.includes(',')) fail(`several hosts ("${host}") are not supported; name one host`);

  const tls: { -readonly [K in keyof ConnectionOptions]: ConnectionOptions[K] } = {};
  const rootcert = kv.get('sslrootcert');
  if (rootcert !== undefined && rootcert !== '') tls.ca = readPem('sslrootcert', rootcert);
  const cert = kv.get('sslcert');
  if (cert !== undefined && cert !== '') tls.cert = readPem('sslcert', cert);
  const key = kv.get('sslkey');
  if (key !== undefined && key !== '') tls.key = readPem('sslkey', key);
  const passphrase = kv.get('sslpassword');
  if (passphrase !== undefined) tls.passphrase = passphrase;
  const skipHostname = (): undefined => undefined;
  let ssl: false | ConnectionOptions;
  switch (sslmode) {
    case 'disable':
    case 'allow':
      ssl = false;
      break;
    case 'prefer':
      ssl = { ...tls, rejectUnauthorized: false };
      break;
    case 'require':
      // libpq: with a root certificate, require behaves as verify-ca
      ssl = tls.ca === undefined ? { ...tls, rejectUnauthorized: false } : { ...tls, rejectUnauthorized: true, checkServerIdentity: skipHostname };
      break;
    case 'verify-ca':
      if (tls.ca === undefined) fail('sslmode verify-ca needs sslrootcert (the CA certificate file to check the server against)');
      ssl = { ...tls, rejectUnauthorized: true, checkServerIdentity: skipHostname };
      break;
    case 'verify-full':
      ssl = { ...tls, rejectUnauthorized: true, ...(host === undefined || host.startsWith('/') ? {} : { servername: host }) };
      break;
  }
  const str = (k: string): Record<string, string> => {
    const v = kv.get(k);
    return v === undefined ? {} : { [k]: v };
  };
  return {
    ...(host === undefined || host === '' ? {} : { host }),
    ...(port === undefined ? {} : { port }),
    ...(kv.get('dbname') === undefined ? {} : { database: kv.get('dbname') as string }),
    ...str('user'),
    ...str('password'),
    ...str('options'),
    ...str('application_name'),
    ...str('client_encoding'),
    ...(timeout === undefined || timeout === 0 ? {} : { connectionTimeoutMillis: Math.max(2, timeout) * 1000 }),
    ssl,
    sslmode,
  };
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
