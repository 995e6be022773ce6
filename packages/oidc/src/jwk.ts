/**
 * Turning JWT-SVID authority keys into the public JWKs the OIDC provider serves.
 *
 * Every key is reduced to its public members in SPIRE's member order
 * (`use, kty, kid, crv, alg, x, y` / `use, kty, kid, alg, n, e`), EC coordinates are
 * left-padded to the curve's full length, and `alg` is derived from the key itself
 * (RSA >= 2048 bits -> RS256, P-256 -> ES256, P-384 -> ES384). Keys relying parties
 * cannot use (unknown kty, missing kid, unknown curve, malformed parameters) are dropped
 * with a reason rather than published: one unknown kty makes go-jose (Vault) reject the
 * whole set.
 */

/** A JSON Web Key as read from a bundle or pushed by a caller (public or private). */
export interface JsonWebKey {
  readonly kty?: string;
  readonly kid?: string;
  readonly use?: string;
  readonly alg?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly n?: string;
  readonly e?: string;
  readonly [member: string]: unknown;
}

/** The public JWK published at /keys. Member order matters for byte-identical output. */
export interface PublishedJwk {
  readonly use?: 'sig';
  readonly kty: 'EC' | 'RSA';
  readonly kid: string;
  readonly crv?: string;
  readonly alg?: string;
  readonly x?: string;
  readonly y?: string;
  readonly n?: string;
  readonly e?: string;
}

/** Algorithms the provider can advertise, in the order SPIRE lists them. */
export const SUPPORTED_ALGS = ['RS256', 'ES256', 'ES384'] as const;
export type SupportedAlg = (typeof SUPPORTED_ALGS)[number];

/** Members that make a JWK private (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
export const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'] as const;

/** Relying parties (Entra, AWS) keep only about this many keys. */
export const MAX_PUBLISHED_KEYS = 100;

const CURVE_BYTES: Readonly<Record<string, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const CURVE_ALG: Readonly<Record<string, SupportedAlg>> = { 'P-256': 'ES256', 'P-384': 'ES384' };
const B64URL = /^[A-Za-z0-9_-]*$/;

export interface DroppedKey {
  readonly index: number;
  readonly kid: string | undefined;
  readonly reason: string;
}

export interface PublicKeySet {
  readonly keys: readonly PublishedJwk[];
  readonly dropped: readonly DroppedKey[];
}

export interface PublicKeySetOptions {
  /** Adds `"use":"sig"` to every key (SPIRE's set_key_use; Entra ID needs it). */
  readonly setKeyUse?: boolean;
  /** Cap on the number of keys; the oldest (first) keys beyond it are dropped. Default 100. */
  readonly maxKeys?: number;
}

function decodeB64Url(s: string): Buffer | undefined {
  if (!B64URL.test(s)) return undefined;
  return Buffer.from(s, 'base64url');
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** Bit length of a big-endian unsigned integer. */
export function bitLength(b: Buffer): number {
  const s = stripLeadingZeros(b);
  const first = s[0] ?? 0;
  if (first === 0) return 0;
  return (s.length - 1) * 8 + (32 - Math.clz32(first));
}

/** Pads (or validates) an EC coordinate to the curve's full byte length. */
function fullCoordinate(value: string, size: number): string | undefined {
  const raw = decodeB64Url(value);
  if (raw === undefined || raw.length === 0) return undefined;
  const s = stripLeadingZeros(raw);
  if (s.length > size) return undefined;
  if (raw.length === size) return value;
  const out = Buffer.alloc(size);
  s.copy(out, size - s.length);
  return out.toString('base64url');
}

/** The alg a key implies, or undefined when it implies none SPIRE advertises. */
export function algForKey(jwk: Pick<PublishedJwk, 'kty' | 'crv' | 'n'>): SupportedAlg | undefined {
  if (jwk.kty === 'EC') return jwk.crv === undefined ? undefined : CURVE_ALG[jwk.crv];
  if (jwk.kty === 'RSA' && jwk.n !== undefined) {
    const n = decodeB64Url(jwk.n);
    return n !== undefined && bitLength(n) >= 2048 ? 'RS256' : undefined;
  }
  return undefined;
}

type Converted = { readonly jwk: PublishedJwk } | { readonly reason: string };

/** Reduces one JWK to its published public form, or says why it cannot be published. */
export function toPublishedJwk(input: JsonWebKey, setKeyUse = false): Converted {
  const kid = input.kid;
  if (typeof kid !== 'string' || kid === '') return { reason: 'missing kid' };
  const use = setKeyUse ? { use: 'sig' as const } : {};
  if (input.kty === 'EC') {
    const crv = input.crv;
    if (typeof crv !== 'string') return { reason: 'missing crv' };
    const size = CURVE_BYTES[crv];
    if (size === undefined) return { reason: `unsupported curve "${crv}"` };
    if (typeof input.x !== 'string' || typeof input.y !== 'string') return { reason: 'missing x or y' };
    const x = fullCoordinate(input.x, size);
    const y = fullCoordinate(input.y, size);
    if (x === undefined || y === undefined) return { reason: `bad coordinate length for ${crv}` };
    const alg = CURVE_ALG[crv];
    return { jwk: { ...use, kty: 'EC', kid, crv, ...(alg === undefined ? {} : { alg }), x, y } };
  }
  if (input.kty === 'RSA') {
    if (typeof input.n !== 'string' || typeof input.e !== 'string') return { reason: 'missing n or e' };
    const n = decodeB64Url(input.n);
    const e = decodeB64Url(input.e);
    if (n === undefined || e === undefined || bitLength(n) === 0 || bitLength(e) === 0) {
      return { reason: 'malformed n or e' };
    }
    // Canonical form: no leading zero octets (RFC 7518 §6.3.1.1).
    const nOut = stripLeadingZeros(n).toString('base64url');
    const eOut = stripLeadingZeros(e).toString('base64url');
    const alg = bitLength(n) >= 2048 ? 'RS256' : undefined;
    return { jwk: { ...use, kty: 'RSA', kid, ...(alg === undefined ? {} : { alg }), n: nOut, e: eOut } };
  }
  return { reason: `unsupported kty "${String(input.kty)}"` };
}

/**
 * Builds the published key set: public members only, unique kids (first wins), at most
 * maxKeys keys (the most recently added ones, i.e. the last in source order, are kept).
 */
export function toPublicKeySet(keys: readonly JsonWebKey[], options: PublicKeySetOptions = {}): PublicKeySet {
  const maxKeys = options.maxKeys ?? MAX_PUBLISHED_KEYS;
  const out: PublishedJwk[] = [];
  const dropped: DroppedKey[] = [];
  const seen = new Set<string>();
  keys.forEach((k, index) => {
    const kid = typeof k.kid === 'string' ? k.kid : undefined;
    const r = toPublishedJwk(k, options.setKeyUse === true);
    if ('reason' in r) {
      dropped.push({ index, kid, reason: r.reason });
      return;
    }
    if (seen.has(r.jwk.kid)) {
      dropped.push({ index, kid, reason: 'duplicate kid' });
      return;
    }
    seen.add(r.jwk.kid);
    out.push(r.jwk);
  });
  if (out.length > maxKeys) {
    const extra = out.length - maxKeys;
    for (const k of out.slice(0, extra)) {
      dropped.push({ index: keys.findIndex((x) => x.kid === k.kid), kid: k.kid, reason: `more than ${maxKeys} keys` });
    }
    out.splice(0, extra);
  }
  return { keys: out, dropped };
}

/** The algs the published keys allow, in SPIRE's order; SPIRE's full list when there are none. */
export function signingAlgs(keys: readonly PublishedJwk[]): SupportedAlg[] {
  const present = new Set(keys.map((k) => k.alg));
  const algs = SUPPORTED_ALGS.filter((a) => present.has(a));
  return algs.length > 0 ? algs : [...SUPPORTED_ALGS];
}
