/**
 * `ztwim oidc check ISSUER --for vault|entra|aws|gcp`: fetches a live discovery document and
 * key set and lints them against one relying party's rules (shared/spec consumers.md).
 */
import { createPublicKey, type JsonWebKey as NodeJwk } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { bitLength, PRIVATE_MEMBERS } from './jwk.ts';
import { internal } from '@ztwim/core';

export const CHECK_TARGETS = ['vault', 'entra', 'aws', 'gcp'] as const;
export type CheckTarget = (typeof CHECK_TARGETS)[number];

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  readonly severity: Severity;
  /** Stable rule id, e.g. `jwks.use-sig`. */
  readonly rule: string;
  readonly message: string;
}

/** What a fetch function must return (a subset of the WHATWG Response). */
export interface CheckResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
}

export type CheckFetch = (
  url: string,
  init: { readonly redirect: 'manual'; readonly headers: Readonly<Record<string, string>>; readonly signal?: AbortSignal },
) => Promise<CheckResponse>;

export interface CheckOptions {
  /** Custom fetch (e.g. globalThis.fetch); by default node:http(s) with `ca`. */
  readonly fetch?: CheckFetch;
  /** Extra CA certificates (PEM) for the TLS fetches; system roots otherwise. */
  readonly ca?: string | readonly string[];
  /** Per-request timeout. Default 10 s. */
  readonly timeoutMs?: number;
}

export const TARGET_NAMES: Readonly<Record<CheckTarget, string>> = {
  vault: 'Vault (cap/jwt)',
  entra: 'Entra ID',
  aws: 'AWS STS',
  gcp: 'Google Cloud',
};

/** Algorithms each relying party accepts for JWT signatures. */
export const TARGET_ALGS: Readonly<Record<CheckTarget, readonly string[]>> = {
  // Vault login uses all of cap's algorithms when jwt_supported_algs is empty.
  vault: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'],
  // Entra: only RS256 is supported; others "may work" but are untested.
  entra: ['RS256'],
  // AWS: RS256, and ECDSA since 2024-11-20 (curves unverified).
  aws: ['RS256', 'ES256', 'ES384'],
  // Google: RS256 or ES256.
  gcp: ['RS256', 'ES256'],
};

/** Largest body read; anything beyond is an error. */
const MAX_BODY = 1024 * 1024;
const DISCOVERY_WARN_BYTES = 32 * 1024;
const JWKS_WARN_BYTES = 128 * 1024;
const MAX_KEYS = 100;
const EC_SIZES: Readonly<Record<string, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const EC_ALGS: Readonly<Record<string, string>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const RSA_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']);

interface Fetched {
  readonly status: number;
  readonly contentType: string | null;
  readonly location: string | null;
  readonly body: Buffer;
}

class BodyTooLarge extends Error {}

function nodeFetch(ca: string | readonly string[] | undefined, timeoutMs: number): (url: string) => Promise<Fetched> {
  return (url) =>
    new Promise<Fetched>((resolve, reject) => {
      const u = new URL(url);
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
        u,
        {
          method: 'GET',
          headers: { accept: 'application/json', 'user-agent': 'ztwim-oidc-check' },
          timeout: timeoutMs,
          ...(u.protocol === 'https:' && ca !== undefined ? { ca: typeof ca === 'string' ? ca : [...ca] } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) {
              req.destroy(new BodyTooLarge(`response is larger than ${MAX_BODY} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => {
            const h: IncomingHttpHeaders = res.headers;
            resolve({
              status: res.statusCode ?? 0,
              contentType: h['content-type'] ?? null,
              location: h.location ?? null,
              body: Buffer.concat(chunks),
            });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(internal(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
}

function viaFetch(f: CheckFetch, timeoutMs: number): (url: string) => Promise<Fetched> {
  return async (url) => {
    const res = await f(url, {
      redirect: 'manual',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > MAX_BODY) throw new BodyTooLarge(`response is larger than ${MAX_BODY} bytes`);
    return {
      status: res.status,
      contentType: res.headers.get('content-type'),
      location: res.headers.get('location'),
      body,
    };
  };
}

function isJsonContentType(ct: string | null): boolean {
  if (ct === null) return false;
  const mt = ct.split(';')[0]?.trim().toLowerCase() ?? '';
  return mt === 'application/json' || mt === 'application/jwk-set+json';
}

function errorText(e: unknown): string {
  const err = e as Error & { code?: string; cause?: { code?: string; message?: string } };
  const code = err.code ?? err.cause?.code;
  const msg = err.cause?.message !== undefined && err.message === 'fetch failed' ? err.cause.message : err.message;
  return code !== undefined && !msg.includes(code) ? `${msg} (${code})` : msg;
}

type Add = (severity: Severity, rule: string, message: string) => void;

function checkIssuerUrl(url: string, target: CheckTarget, add: Add): URL | undefined {
  const rp = TARGET_NAMES[target];
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    add('error', 'issuer.url', `issuer "${url}" is not a URL with a scheme and host`);
    return undefined;
  }
  if (u.protocol !== 'https:') {
    if (target === 'vault') {
      add('warning', 'issuer.https', `issuer uses ${u.protocol.slice(0, -1)}; Vault accepts it but keys travel unauthenticated: use https`);
    } else {
      add('error', 'issuer.https', `${rp} requires an https issuer (got ${u.protocol.slice(0, -1)})`);
    }
  }
  if (u.search !== '' || url.includes('?')) add('error', 'issuer.query', 'issuer must not contain a query');
  if (u.hash !== '' || url.includes('#')) add('error', 'issuer.fragment', 'issuer must not contain a fragment');
  if (u.username !== '' || u.password !== '') add('error', 'issuer.userinfo', 'issuer must not contain user info');
  if (u.port !== '') {
    add(
      target === 'aws' ? 'warning' : 'info',
      'issuer.port',
      `issuer has an explicit port ${u.port}${target === 'aws' ? '; AWS says the provider URL should not contain a port' : ''}`,
    );
  }
  if (url.endsWith('/')) {
    add('warning', 'issuer.trailing-slash', 'issuer ends with "/": relying parties compare iss byte for byte, so tokens must carry exactly this form');
  }
  if (/\s/.test(url)) add('error', 'issuer.whitespace', 'issuer contains whitespace');
  if (url.length > 600) add('error', 'issuer.length', `issuer is ${url.length} characters; Entra ID allows at most 600`);
  return u;
}

function parseJsonObject(f: Fetched, what: string, add: Add, rule: string): Record<string, unknown> | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(f.body.toString('utf8'));
  } catch {
    add('error', `${rule}.json`, `${what} is not valid JSON`);
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    add('error', `${rule}.json`, `${what} is not a JSON object`);
    return undefined;
  }
  return doc as Record<string, unknown>;
}

function checkResponse(f: Fetched, what: string, url: string, add: Add, rule: string, warnBytes: number): boolean {
  if (f.status >= 300 && f.status < 400) {
    add(
      'error',
      `${rule}.redirect`,
      `${what} at ${url} answered ${f.status} redirect${f.location === null ? '' : ` to ${f.location}`}; relying parties require 200 directly, without redirects`,
    );
    return false;
  }
  if (f.status !== 200) {
    const text = f.body.toString('utf8').slice(0, 200).trim();
    add('error', `${rule}.status`, `${what} at ${url} answered ${f.status}${text === '' ? '' : `: ${text}`}`);
    return false;
  }
  if (!isJsonContentType(f.contentType)) {
    add('error', `${rule}.content-type`, `${what} has Content-Type ${f.contentType === null ? '(none)' : `"${f.contentType}"`}; expected application/json`);
  }
  if (f.body.length > warnBytes) {
    add('warning', `${rule}.size`, `${what} is ${f.body.length} bytes (over ${warnBytes}); relying parties may refuse large responses`);
  }
  return true;
}

function checkKey(k: unknown, i: number, target: CheckTarget, add: Add, kids: Map<string, number>): string | undefined {
  const rp = TARGET_NAMES[target];
  if (typeof k !== 'object' || k === null || Array.isArray(k)) {
    add('error', 'jwks.key', `key ${i} is not a JSON object`);
    return undefined;
  }
  const key = k as Record<string, unknown>;
  const kid = typeof key.kid === 'string' ? key.kid : undefined;
  const name = kid === undefined ? `key ${i}` : `key ${i} (kid "${kid}")`;
  if (kid === undefined || kid === '') {
    add('error', 'jwks.kid', `${name} has no kid; ${target === 'gcp' ? 'Google requires kid' : 'JWT-SVID validators select keys by kid'}`);
  } else if (kids.has(kid)) {
    add('error', 'jwks.kid-unique', `${name} repeats the kid of key ${String(kids.get(kid))}`);
  } else {
    kids.set(kid, i);
  }
  const priv = PRIVATE_MEMBERS.filter((m) => m in key);
  if (priv.length > 0) add('error', 'jwks.private', `${name} publishes private members ${priv.join(', ')}`);
  if ('x5c' in key) add('warning', 'jwks.x5c', `${name} carries x5c; the OIDC key set should hold bare public keys`);

  const use = key.use;
  if (target === 'entra') {
    if (use !== 'sig')
      add('error', 'jwks.use-sig', `Entra ID requires use=sig on every key (${name} has ${use === undefined ? 'no use' : `use=${JSON.stringify(use)}`})`);
  } else if (use !== undefined && use !== 'sig') {
    add('error', 'jwks.use', `${name} has use=${JSON.stringify(use)}; jose and PyJWKClient ignore keys whose use is not "sig"`);
  }
  if (target === 'gcp' && use !== 'sig') {
    add('info', 'jwks.use-sig', `${name} has no use=sig; Google's uploaded jwksJson format carries use:"sig"`);
  }

  const kty = key.kty;
  let implied: string | undefined;
  if (kty === 'EC') {
    const crv = typeof key.crv === 'string' ? key.crv : undefined;
    const size = crv === undefined ? undefined : EC_SIZES[crv];
    if (crv === undefined || size === undefined) {
      add('error', 'jwks.crv', `${name} has ${crv === undefined ? 'no crv' : `unsupported curve "${crv}"`}`);
    } else {
      implied = EC_ALGS[crv];
      for (const c of ['x', 'y'] as const) {
        const v = key[c];
        const len = typeof v === 'string' && /^[A-Za-z0-9_-]+$/.test(v) ? Buffer.from(v, 'base64url').length : -1;
        if (len !== size) {
          add(
            'error',
            'jwks.ec-length',
            `${name} has a ${len < 0 ? 'missing or malformed' : `${len}-byte`} ${c} coordinate; ${crv} needs exactly ${size} bytes (go-jose rejects it)`,
          );
        }
      }
    }
  } else if (kty === 'RSA') {
    const n = typeof key.n === 'string' ? Buffer.from(key.n, 'base64url') : undefined;
    if (n === undefined || typeof key.e !== 'string') {
      add('error', 'jwks.rsa', `${name} lacks n or e`);
    } else {
      const bits = bitLength(n);
      if (bits < 2048) add('error', 'jwks.rsa-size', `${name} is a ${bits}-bit RSA key; at least 2048 bits are required`);
      implied = 'RS256';
    }
  } else {
    add(
      'error',
      'jwks.kty',
      `${name} has kty ${JSON.stringify(kty)}; only RSA and EC keys are allowed${target === 'vault' ? ' (go-jose rejects the whole set on an unknown kty)' : ''}`,
    );
    return undefined;
  }
  try {
    const { use: _u, alg: _a, key_ops: _o, ...pub } = key;
    createPublicKey({ key: pub as NodeJwk, format: 'jwk' });
  } catch (e) {
    add('error', 'jwks.invalid', `${name} is not a valid public key: ${(e as Error).message}`);
  }

  const alg = key.alg;
  if (alg !== undefined) {
    const fits = typeof alg === 'string' && (kty === 'RSA' ? RSA_ALGS.has(alg) : alg === implied);
    if (!fits) {
      add('error', 'jwks.alg', `${name} has alg ${JSON.stringify(alg)}, which does not fit its ${String(kty)}${kty === 'EC' ? ` ${String(key.crv)}` : ''} key`);
      return undefined;
    }
    implied = alg as string;
  } else if (target === 'gcp') {
    add('warning', 'jwks.alg', `${name} has no alg; Google's key format carries alg`);
  }
  if (implied !== undefined && !TARGET_ALGS[target].includes(implied)) {
    const sev: Severity = target === 'entra' ? 'warning' : 'error';
    const why = target === 'entra' ? 'Entra ID supports only RS256 (others are untested)' : `${rp} accepts only ${TARGET_ALGS[target].join(', ')}`;
    add(sev, 'jwks.alg-target', `${name} signs with ${implied}; ${why}`);
  }
  if (target === 'aws' && implied !== undefined && implied.startsWith('ES')) {
    add('info', 'jwks.alg-aws', `${name} signs with ${implied}; AWS accepts ECDSA since 2024-11-20, RS256 is the safest choice`);
  }
  return implied;
}

/**
 * Fetches `<issuer>/.well-known/openid-configuration` and its `jwks_uri` and reports every
 * rule of the target relying party that they break. Any `error` finding means the relying
 * party will (or is documented to) refuse the setup.
 */
export async function checkIssuer(url: string, target: CheckTarget, options: CheckOptions = {}): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add: Add = (severity, rule, message) => {
    findings.push({ severity, rule, message });
  };
  if (!CHECK_TARGETS.includes(target)) {
    add('error', 'target', `unknown target "${String(target)}"; expected one of ${CHECK_TARGETS.join(', ')}`);
    return findings;
  }
  const rp = TARGET_NAMES[target];
  const timeoutMs = options.timeoutMs ?? 10_000;
  const get = options.fetch !== undefined ? viaFetch(options.fetch, timeoutMs) : nodeFetch(options.ca, timeoutMs);
  const issuerUrl = checkIssuerUrl(url, target, add);
  if (issuerUrl === undefined) return findings;

  // cap trims one trailing slash before appending the well-known path.
  const discoveryUrl = `${url.endsWith('/') ? url.slice(0, -1) : url}/.well-known/openid-configuration`;
  let disc: Fetched;
  try {
    disc = await get(discoveryUrl);
  } catch (e) {
    add('error', 'discovery.fetch', `cannot fetch ${discoveryUrl}: ${errorText(e)}`);
    return findings;
  }
  if (!checkResponse(disc, 'discovery document', discoveryUrl, add, 'discovery', DISCOVERY_WARN_BYTES)) return findings;
  const doc = parseJsonObject(disc, 'discovery document', add, 'discovery');
  if (doc === undefined) return findings;

  const issuer = doc.issuer;
  if (typeof issuer !== 'string') {
    add('error', 'discovery.issuer', 'discovery document has no issuer');
  } else if (issuer !== url) {
    add('error', 'discovery.issuer', `discovery issuer "${issuer}" does not equal the issuer URL "${url}" exactly; ${rp} compares them byte for byte`);
  }
  for (const m of ['response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported'] as const) {
    const v = doc[m];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) {
      add('error', `discovery.${m}`, `discovery ${m} must be a non-empty list of strings`);
    }
  }
  if (!('authorization_endpoint' in doc)) {
    add(
      'warning',
      'discovery.authorization_endpoint',
      'discovery document has no authorization_endpoint (OIDC Discovery lists it as required; SPIRE sends "")',
    );
  }
  const docAlgs = Array.isArray(doc.id_token_signing_alg_values_supported) ? (doc.id_token_signing_alg_values_supported as unknown[]) : [];
  if (docAlgs.length > 0 && !docAlgs.some((a) => typeof a === 'string' && TARGET_ALGS[target].includes(a))) {
    add('error', 'discovery.algs', `discovery advertises ${docAlgs.join(', ')}; ${rp} accepts only ${TARGET_ALGS[target].join(', ')}`);
  }

  const jwksUri = doc.jwks_uri;
  if (typeof jwksUri !== 'string' || jwksUri === '') {
    add('error', 'discovery.jwks_uri', 'discovery document has no jwks_uri');
    return findings;
  }
  let ju: URL;
  try {
    ju = new URL(jwksUri);
  } catch {
    add('error', 'discovery.jwks_uri', `jwks_uri "${jwksUri}" is not an absolute URL`);
    return findings;
  }
  if (ju.protocol !== 'https:') {
    add(target === 'vault' ? 'warning' : 'error', 'jwks_uri.https', `jwks_uri "${jwksUri}" does not use https`);
  }
  if (ju.host !== issuerUrl.host) {
    add(
      'warning',
      'jwks_uri.host',
      `jwks_uri host "${ju.host}" differs from the issuer host "${issuerUrl.host}"; relying parties trust the issuer's host and some check the JWKS host's TLS chain separately`,
    );
  }

  let jw: Fetched;
  try {
    jw = await get(jwksUri);
  } catch (e) {
    add('error', 'jwks.fetch', `cannot fetch ${jwksUri}: ${errorText(e)}`);
    return findings;
  }
  if (!checkResponse(jw, 'key set', jwksUri, add, 'jwks', JWKS_WARN_BYTES)) return findings;
  const set = parseJsonObject(jw, 'key set', add, 'jwks');
  if (set === undefined) return findings;
  const keys = set.keys;
  if (!Array.isArray(keys)) {
    add('error', 'jwks.keys', 'key set has no "keys" array');
    return findings;
  }
  if (keys.length === 0) {
    add('error', 'jwks.empty', 'key set has no keys; no token can be validated');
    return findings;
  }
  if (keys.length > MAX_KEYS) {
    const sev: Severity = target === 'entra' || target === 'aws' ? 'error' : 'warning';
    add(
      sev,
      'jwks.count',
      `key set has ${keys.length} keys; ${target === 'entra' ? 'Entra ID keeps only the first 100' : target === 'aws' ? 'AWS accepts about 100 keys' : 'keep at most 100 keys'}`,
    );
  }
  const kids = new Map<string, number>();
  const algs = new Set<string>();
  keys.forEach((k: unknown, i) => {
    const a = checkKey(k, i, target, add, kids);
    if (a !== undefined) algs.add(a);
  });
  const usable = [...algs].filter((a) => TARGET_ALGS[target].includes(a));
  if (usable.length === 0) {
    add('error', 'jwks.no-usable-key', `no key in the set can sign tokens ${rp} accepts (${TARGET_ALGS[target].join(', ')})`);
  }
  for (const a of docAlgs) {
    if (typeof a === 'string' && !algs.has(a) && algs.size > 0) {
      add('info', 'discovery.algs-unused', `discovery advertises ${a} but no published key uses it`);
    }
  }
  return findings;
}

/** True when no finding is an error (the CLI exits nonzero otherwise). */
export function checkPassed(findings: readonly Finding[]): boolean {
  return !findings.some((f) => f.severity === 'error');
}

/** Human-readable report, one finding per line, then a summary line. */
export function formatFindings(findings: readonly Finding[], context: { url?: string; target?: CheckTarget } = {}): string {
  const order: Record<Severity, number> = { error: 0, warning: 1, info: 2 };
  const sorted = [...findings].sort((a, b) => order[a.severity] - order[b.severity]);
  const lines = sorted.map((f) => `${f.severity.toUpperCase().padEnd(7)} ${f.rule.padEnd(28)} ${f.message}`);
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  const who = context.target === undefined ? '' : ` for ${TARGET_NAMES[context.target]}`;
  const what = context.url === undefined ? '' : ` ${context.url}`;
  lines.push(
    errors === 0
      ? `PASS${what}${who}: ${warnings} warning${warnings === 1 ? '' : 's'}`
      : `FAIL${what}${who}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`,
  );
  return `${lines.join('\n')}\n`;
}
