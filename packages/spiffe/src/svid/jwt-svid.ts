import type { KeyObject } from 'node:crypto';
import { SpiffeError, type SpiffeErrorCode } from '../errors.ts';
import { SpiffeId } from '../id/spiffe-id.ts';
import type { JwtBundleSource } from '../bundle/source.ts';
import type { JwtBundle } from '../bundle/jwt-bundle.ts';
import { decodeBase64Url } from '../internal/base64.ts';
import { BoundedCache } from '../internal/bounded-cache.ts';
import { verifyJwsSignature } from './jws-signature.ts';
import { JsonError, isJsonObject, parseJson, type JsonObject, type JsonValue } from '../internal/json.ts';

/** JWT-SVID.md §3: the only permitted signature algorithms. */
export const JWT_SVID_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];

/** Default clock skew allowance for exp/nbf/iat (stricter than go-jose's 60 s). */
export const DEFAULT_JWT_LEEWAY_SECONDS = 30;

export interface JwtSvidValidateOptions {
  /** Validation time; defaults to the current time. */
  readonly now?: Date;
  /** Allowed clock skew for exp/nbf/iat in seconds; default 30. */
  readonly leewaySeconds?: number;
}

interface JwtSvidFields {
  readonly id: SpiffeId;
  readonly audience: string[];
  readonly expiry: Date;
  readonly issuedAt: Date | undefined;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly token: string;
}

/** A parsed (and, via parseAndValidateJwtSvid, verified) JWT-SVID. */
export class JwtSvid {
  readonly id: SpiffeId;
  readonly audience: string[];
  readonly expiry: Date;
  readonly issuedAt?: Date;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly token: string;
  hint?: string;

  private constructor(f: JwtSvidFields) {
    this.id = f.id;
    this.audience = f.audience;
    this.expiry = f.expiry;
    if (f.issuedAt !== undefined) this.issuedAt = f.issuedAt;
    this.claims = f.claims;
    this.token = f.token;
  }

  /** @internal */
  static fromFields(f: JwtSvidFields): JwtSvid {
    return new JwtSvid(f);
  }

  /** The compact JWS token. */
  marshal(): string {
    return this.token;
  }
}

function err(code: SpiffeErrorCode, message: string, cause?: unknown): SpiffeError {
  return new SpiffeError(code, `jwtsvid: ${message}`, { cause });
}

function goQuote(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

interface Parsed {
  readonly header: JsonObject;
  readonly claims: JsonObject;
  readonly id: SpiffeId;
  readonly audience: string[];
  readonly exp: number;
  readonly nbf: number | undefined;
  readonly iat: number | undefined;
}

function checkExpectedAudience(audience: readonly string[]): void {
  if (!Array.isArray(audience) || audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
    throw err('ERR_JWTSVID_AUDIENCE', 'expected audience must be a non-empty list of non-empty strings');
  }
}

function decodePart(part: string): JsonObject {
  const bytes = decodeBase64Url(part, 'ERR_JWTSVID_INVALID', 'jwtsvid: unable to parse JWT token');
  let v: JsonValue;
  try {
    v = parseJson(bytes);
  } catch (e) {
    if (e instanceof JsonError) throw err('ERR_JWTSVID_INVALID', 'unable to parse JWT token', e);
    throw e;
  }
  if (!isJsonObject(v)) throw err('ERR_JWTSVID_INVALID', 'unable to parse JWT token');
  return v;
}

function numericDate(claims: JsonObject, name: string): number | undefined {
  const v = claims[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw err('ERR_JWTSVID_INVALID', `unable to get claims from token: "${name}" must be a number`);
  }
  return Math.trunc(v);
}

function plain(v: JsonValue): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (isJsonObject(v)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      Object.defineProperty(o, k, { value: plain(v[k] as JsonValue), enumerable: true, writable: true, configurable: true });
    }
    return o;
  }
  return v;
}

/**
 * parseToken's results by token; a Parsed is never handed out or changed, so sharing one is safe.
 * The last 128: tokens a workload sees again before they expire (its own, fetched again; a peer's,
 * presented again) are a few dozen.
 */
const parsedTokens = new BoundedCache<string, Parsed>(128);

/**
 * go-spiffe steps 1-5 (structure, alg, typ, claim types, sub, exp), remembered per token: the
 * outcome depends on the token's text alone, and the Workload API answers FetchJWTSVID from its
 * cache with the very same token until it is renewed (base64url and strict-JSON decoding were
 * ~15 % of a call's CPU). What depends on the call (audience, clock, signature) is checked by the
 * callers every time. Only tokens that parse are kept; the last 128.
 */
function parseToken(token: string): Parsed {
  if (typeof token !== 'string') throw err('ERR_JWTSVID_INVALID', 'unable to parse JWT token');
  const hit = parsedTokens.get(token);
  if (hit !== undefined) return hit;
  const p = parseTokenText(token);
  parsedTokens.set(token, p);
  return p;
}

function parseTokenText(token: string): Parsed {
  if (typeof token !== 'string') throw err('ERR_JWTSVID_INVALID', 'unable to parse JWT token');
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] === '' || parts[1] === '' || parts[2] === '') {
    throw err('ERR_JWTSVID_INVALID', 'unable to parse JWT token');
  }
  const header = decodePart(parts[0] as string);
  const alg = header['alg'];
  if (typeof alg !== 'string' || !JWT_SVID_ALGORITHMS.includes(alg)) {
    throw err('ERR_JWTSVID_INVALID', 'unable to parse JWT token');
  }
  if (header['crit'] !== undefined || header['b64'] !== undefined || header['enc'] !== undefined) {
    throw err('ERR_JWTSVID_INVALID', 'unable to parse JWT token');
  }
  // signature must at least be well-formed base64url
  decodeBase64Url(parts[2] as string, 'ERR_JWTSVID_INVALID', 'jwtsvid: unable to parse JWT token');
  const typ = header['typ'];
  if (typ !== undefined && typ !== 'JWT' && typ !== 'JOSE') {
    throw err('ERR_JWTSVID_INVALID', 'token header type not equal to either JWT or JOSE');
  }
  const claims = decodePart(parts[1] as string);
  const sub = claims['sub'];
  if (sub !== undefined && typeof sub !== 'string') {
    throw err('ERR_JWTSVID_INVALID', 'unable to get claims from token: "sub" must be a string');
  }
  const audRaw = claims['aud'];
  let audience: string[];
  if (audRaw === undefined || audRaw === null) audience = [];
  else if (typeof audRaw === 'string') audience = [audRaw];
  else if (Array.isArray(audRaw) && audRaw.every((a) => typeof a === 'string')) audience = audRaw as string[];
  else throw err('ERR_JWTSVID_INVALID', 'unable to get claims from token: "aud" must be a string or an array of strings');
  const exp = numericDate(claims, 'exp');
  const nbf = numericDate(claims, 'nbf');
  const iat = numericDate(claims, 'iat');
  if (sub === undefined || sub === '') throw err('ERR_JWTSVID_INVALID', 'token missing subject claim');
  if (exp === undefined) throw err('ERR_JWTSVID_INVALID', 'token missing exp claim');
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(sub);
  } catch (e) {
    throw err('ERR_JWTSVID_INVALID', `token has an invalid subject claim: ${(e as Error).message}`, e);
  }
  return { header, claims, id, audience, exp, nbf, iat };
}

/** go-jose claims.Validate order: audience, nbf, exp, iat. */
function validateClaims(p: Parsed, expected: readonly string[], opts: JwtSvidValidateOptions): void {
  if (!expected.some((a) => p.audience.includes(a))) {
    throw err('ERR_JWTSVID_AUDIENCE', `expected audience in ${goQuote(expected)} (audience=${goQuote(p.audience)})`);
  }
  const leeway = opts.leewaySeconds ?? DEFAULT_JWT_LEEWAY_SECONDS;
  if (!Number.isFinite(leeway) || leeway < 0) throw err('ERR_JWTSVID_INVALID', 'leeway must be a non-negative number');
  const nowMs = opts.now === undefined ? Date.now() : opts.now.getTime();
  if (!Number.isFinite(nowMs)) throw err('ERR_JWTSVID_INVALID', 'invalid validation time');
  const leewayMs = leeway * 1000;
  if (p.nbf !== undefined && nowMs + leewayMs < p.nbf * 1000) {
    throw err('ERR_JWTSVID_INVALID', 'token not valid yet (nbf)');
  }
  if (nowMs - leewayMs > p.exp * 1000) throw err('ERR_JWTSVID_EXPIRED', 'token has expired');
  if (p.iat !== undefined && nowMs + leewayMs < p.iat * 1000) {
    throw err('ERR_JWTSVID_INVALID', 'token issued in the future (iat)');
  }
}

function toSvid(p: Parsed, token: string): JwtSvid {
  return JwtSvid.fromFields({
    id: p.id,
    audience: [...p.audience],
    expiry: new Date(p.exp * 1000),
    issuedAt: p.iat === undefined ? undefined : new Date(p.iat * 1000),
    claims: Object.freeze(plain(p.claims) as Record<string, unknown>),
    token,
  });
}

/** Whether `key` may verify `alg` (prevents RSA/EC key confusion). */
function keyFitsAlg(key: KeyObject, alg: string): boolean {
  const t = key.asymmetricKeyType;
  if (alg.startsWith('RS') || alg.startsWith('PS')) return t === 'rsa';
  const crv = key.asymmetricKeyDetails?.namedCurve;
  if (t !== 'ec') return false;
  if (alg === 'ES256') return crv === 'prime256v1';
  if (alg === 'ES384') return crv === 'secp384r1';
  if (alg === 'ES512') return crv === 'secp521r1';
  return false;
}

/**
 * Parses and validates a JWT-SVID as go-spiffe's jwtsvid.ParseAndValidate (JWT-SVID.md),
 * with two stricter rules: `audience` must be non-empty and the token's `aud` must contain
 * one of its values; the default leeway is 30 s. Only the subject trust domain's JWT bundle
 * is used. Unlike go-spiffe, `kid` is optional (JWT-SVID §2.2): without one, each authority
 * of that bundle whose key type fits `alg` is tried, and the token is accepted if one verifies. Throws SpiffeError ERR_JWTSVID_INVALID / _UNTRUSTED / _EXPIRED / _AUDIENCE.
 */
export async function parseAndValidateJwtSvid(
  token: string,
  source: JwtBundleSource,
  audience: readonly string[],
  opts: JwtSvidValidateOptions = {},
): Promise<JwtSvid> {
  checkExpectedAudience(audience);
  const p = parseToken(token);
  const kid = p.header['kid'];
  // JWT-SVID §2.2: `kid` is optional; present, it must name a key.
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw err('ERR_JWTSVID_INVALID', 'token header missing key id');
  const td = p.id.trustDomain;
  let bundle: JwtBundle;
  try {
    bundle = source.getJwtBundleForTrustDomain(td);
  } catch (e) {
    throw err('ERR_JWTSVID_UNTRUSTED', `no bundle found for trust domain "${td.name}"`, e);
  }
  const alg = p.header['alg'] as string;
  let candidates: KeyObject[];
  if (kid === undefined) {
    // Without a kid, only the subject trust domain's authorities whose key type fits alg.
    candidates = bundle.keyObjects().filter((k) => keyFitsAlg(k, alg));
    if (candidates.length === 0) {
      throw err('ERR_JWTSVID_UNTRUSTED', `no JWT authority for alg "${alg}" found for trust domain "${td.name}"`);
    }
  } else {
    const key = bundle.findKeyObject(kid);
    if (key === undefined) {
      throw err('ERR_JWTSVID_UNTRUSTED', `no JWT authority "${kid}" found for trust domain "${td.name}"`);
    }
    if (!keyFitsAlg(key, alg)) {
      throw err('ERR_JWTSVID_UNTRUSTED', 'unable to get claims from token: error in cryptographic primitive');
    }
    candidates = [key];
  }
  const signature = decodeBase64Url(token.slice(token.lastIndexOf('.') + 1), 'ERR_JWTSVID_INVALID', 'jwtsvid: unable to parse JWT token');
  if (!candidates.some((key) => verifyJwsSignature(token, alg, key, signature))) {
    throw err('ERR_JWTSVID_UNTRUSTED', 'unable to get claims from token: error in cryptographic primitive');
  }
  validateClaims(p, audience, opts);
  return toSvid(p, token);
}

/**
 * Parses a JWT-SVID without checking its signature (go-spiffe ParseInsecure): only for
 * tokens obtained from a trusted source such as the Workload API. Audience and time
 * claims are still validated.
 */
export function parseInsecureJwtSvid(token: string, audience: readonly string[], opts: JwtSvidValidateOptions = {}): JwtSvid {
  checkExpectedAudience(audience);
  const p = parseToken(token);
  validateClaims(p, audience, opts);
  return toSvid(p, token);
}
