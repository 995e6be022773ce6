import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { JsonValue } from './json.ts';

/** Thrown for a malformed JWK; callers wrap it in their module's SpiffeError. */
export class JwkError extends Error {}

/**
 * Thrown for a well-formed JWK this SDK cannot use: an unknown `kty`, an unsupported curve, key
 * material that is not a valid public key. Bundle parsers skip such a key and keep the rest
 * (Trust Domain and Bundle §4.1.3, §4.2.1); explicit `addAuthority` calls still fail on it.
 */
export class JwkUnusableError extends JwkError {}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const CURVES = new Set(['P-256', 'P-384', 'P-521']);

/** True when `kty` names a key type this SDK can use (EC, RSA, OKP/Ed25519). */
export function isSupportedKty(kty: unknown): boolean {
  return kty === 'EC' || kty === 'RSA' || kty === 'OKP';
}

function str(jwk: Record<string, unknown>, name: string): string {
  const v = jwk[name];
  if (typeof v !== 'string' || v === '') throw new JwkError(`missing or invalid "${name}"`);
  if (!/^[A-Za-z0-9_-]+$/.test(v)) throw new JwkError(`"${name}" is not base64url`);
  return v;
}

function curve(jwk: Record<string, unknown>): string {
  const crv = jwk['crv'];
  if (typeof crv !== 'string' || crv === '') throw new JwkError('missing or invalid "crv"');
  return crv;
}

/**
 * Validates a public JWK and returns it in canonical form (`kty`, `kid`?, `crv`?, `alg`?,
 * then the key parameters), together with the node KeyObject. Private members and
 * members of the wrong type throw JwkError; unknown key types (symmetric keys included),
 * unsupported curves and invalid points throw JwkUnusableError.
 */
export function normalizePublicJwk(input: Readonly<Record<string, JsonValue | undefined>> | JsonWebKey, kid?: string): { jwk: JsonWebKey; key: KeyObject } {
  const jwk = input as Record<string, unknown>;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new JwkError('JWK must be an object');
  const kty = jwk['kty'];
  if (typeof kty !== 'string' || kty === '') throw new JwkError('missing or invalid "kty"');
  if (!isSupportedKty(kty)) throw new JwkUnusableError(`unsupported key type "${kty}"`);
  for (const m of PRIVATE_MEMBERS) {
    if (jwk[m] !== undefined) throw new JwkError(`JWK must be a public key (has "${m}")`);
  }
  const out: Record<string, string> = {};
  out['kty'] = kty;
  if (kid !== undefined) out['kid'] = kid;
  const alg = jwk['alg'];
  if (alg !== undefined && typeof alg !== 'string') throw new JwkError('"alg" must be a string');
  switch (kty) {
    case 'EC': {
      const crv = curve(jwk);
      if (!CURVES.has(crv)) throw new JwkUnusableError(`unsupported EC curve "${crv}"`);
      out['crv'] = crv;
      if (alg !== undefined) out['alg'] = alg;
      out['x'] = str(jwk, 'x');
      out['y'] = str(jwk, 'y');
      break;
    }
    case 'RSA':
      if (alg !== undefined) out['alg'] = alg;
      out['n'] = str(jwk, 'n');
      out['e'] = str(jwk, 'e');
      break;
    case 'OKP': {
      const crv = curve(jwk);
      if (crv !== 'Ed25519') throw new JwkUnusableError(`unsupported OKP curve "${crv}"`);
      out['crv'] = crv;
      if (alg !== undefined) out['alg'] = alg;
      out['x'] = str(jwk, 'x');
      break;
    }
    default:
      throw new JwkUnusableError(`unsupported key type "${kty}"`);
  }
  let key: KeyObject;
  try {
    const material: Record<string, string> = { kty: out['kty'] as string };
    for (const m of ['crv', 'x', 'y', 'n', 'e']) if (out[m] !== undefined) material[m] = out[m] as string;
    key = createPublicKey({ key: material as JsonWebKey, format: 'jwk' });
  } catch {
    throw new JwkUnusableError('invalid key material');
  }
  return { jwk: out as JsonWebKey, key };
}

/** The public JWK (key parameters only, no kid/alg) of a node public key. */
export function publicJwkFromKey(key: KeyObject): JsonWebKey {
  const j = key.export({ format: 'jwk' });
  const out: Record<string, string> = {};
  for (const m of ['kty', 'crv', 'x', 'y', 'n', 'e']) {
    const v = (j as Record<string, unknown>)[m];
    if (typeof v === 'string') out[m] = v;
  }
  return out as JsonWebKey;
}

/** Go-jose's JSON member order for the members we emit. */
const ORDER = ['use', 'kty', 'kid', 'crv', 'alg', 'k', 'x', 'y', 'n', 'e', 'x5c'];

export function orderJwkMembers(jwk: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of ORDER) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out;
}

/** Compares the public key parameters of two JWKs. */
export function sameKeyMaterial(a: JsonWebKey, b: JsonWebKey): boolean {
  for (const m of ['kty', 'crv', 'x', 'y', 'n', 'e'] as const) if (a[m] !== b[m]) return false;
  return true;
}
