// Hand-rolled JWS compact tokens for the interop tests, so broken tokens (alg none, HS256 with a
// public key, tampered parts, odd headers) can be made without any JWT library's guard rails.
import { createHmac, generateKeyPairSync, sign as nodeSign, type JsonWebKey, type KeyObject } from 'node:crypto';

export const b64url = (b: Uint8Array | string): string => Buffer.from(b).toString('base64url');

export type SigAlg = 'ES256' | 'ES384' | 'ES512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512';

export interface TestKey {
  kid: string;
  alg: SigAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Public JWK with kid (no alg/use), as a JWT bundle carries it. */
  jwk: JsonWebKey & { kid: string };
}

export function makeKey(alg: SigAlg, kid: string): TestKey {
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  if (alg.startsWith('ES')) {
    const namedCurve = alg === 'ES256' ? 'P-256' : alg === 'ES384' ? 'P-384' : 'P-521';
    pair = generateKeyPairSync('ec', { namedCurve });
  } else {
    pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  }
  const jwk = { ...(pair.publicKey.export({ format: 'jwk' }) as JsonWebKey), kid };
  return { kid, alg, ...pair, jwk };
}

function hashOf(alg: string): string {
  return `sha${alg.slice(2)}`;
}

/** Signs `header.payload` with the algorithm named in the header (or a forced one). */
export function signParts(headerB64: string, payloadB64: string, alg: string, key: KeyObject | Uint8Array | string): string {
  const input = Buffer.from(`${headerB64}.${payloadB64}`);
  if (alg === 'none') return '';
  if (alg.startsWith('HS'))
    return b64url(
      createHmac(hashOf(alg), key as Uint8Array | string)
        .update(input)
        .digest(),
    );
  const k = key as KeyObject;
  if (alg.startsWith('ES')) return b64url(nodeSign(hashOf(alg), input, { key: k, dsaEncoding: 'ieee-p1363' }));
  if (alg.startsWith('PS')) {
    return b64url(nodeSign(hashOf(alg), input, { key: k, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: Number(alg.slice(2)) / 8 }));
  }
  return b64url(nodeSign(hashOf(alg), input, k));
}

export interface TokenSpec {
  header?: Record<string, unknown>;
  claims: Record<string, unknown>;
  /** Key to sign with (default: none → empty signature). */
  key?: TestKey;
  /** Override the signing algorithm / key material (for HS256-with-public-key etc.). */
  signAlg?: string;
  signKey?: KeyObject | Uint8Array | string;
}

/** Builds a compact JWS. Header defaults to {alg: key.alg, kid: key.kid, typ: 'JWT'}. */
export function makeToken(spec: TokenSpec): string {
  const header = spec.header ?? { alg: spec.key?.alg ?? 'none', ...(spec.key ? { kid: spec.key.kid } : {}), typ: 'JWT' };
  const h = b64url(JSON.stringify(header));
  const p = b64url(JSON.stringify(spec.claims));
  const alg = spec.signAlg ?? (header['alg'] as string);
  const keyMaterial = spec.signKey ?? spec.key?.privateKey;
  const sig = alg === 'none' || keyMaterial === undefined ? '' : signParts(h, p, alg, keyMaterial);
  return `${h}.${p}.${sig}`;
}

/** JWKS `{"keys":[...]}` with kid on every key (Workload API / jwtbundle form). */
export function jwks(...keys: TestKey[]): string {
  return JSON.stringify({ keys: keys.map((k) => k.jwk) });
}
