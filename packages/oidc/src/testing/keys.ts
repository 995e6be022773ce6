/** Test-only key material (not exported from the package index). */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JsonWebKey } from '../jwk.ts';

export type TestKeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'ed25519';

export interface TestKey {
  readonly kid: string;
  /** Public JWK with kid (as a bundle's jwt-svid entry would hold, minus use). */
  readonly publicJwk: JsonWebKey;
  /** Private JWK with kid. */
  readonly privateJwk: JsonWebKey;
}

export function randomKid(): string {
  // SPIRE: 32 random [a-zA-Z0-9]
  const abc = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return [...randomBytes(32)].map((b) => abc[b % abc.length]).join('');
}

export function makeKey(type: TestKeyType, kid: string = randomKid()): TestKey {
  const pair =
    type === 'rsa-2048'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ed25519'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('ec', { namedCurve: type === 'ec-p256' ? 'P-256' : 'P-384' });
  return {
    kid,
    publicJwk: { ...(pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid } as JsonWebKey,
    privateJwk: { ...(pair.privateKey.export({ format: 'jwk' }) as Record<string, unknown>), kid } as JsonWebKey,
  };
}

/** A SPIFFE bundle document holding the keys as jwt-svid authorities (plus one x509 entry). */
export function bundleJson(keys: readonly JsonWebKey[], sequence = 1): string {
  return JSON.stringify(
    {
      keys: [
        // An x509-svid entry the file source must ignore.
        { use: 'x509-svid', kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', x5c: ['MIIB'] },
        ...keys.map((k) => ({ use: 'jwt-svid', ...k })),
      ],
      spiffe_sequence: sequence,
      spiffe_refresh_hint: 300,
    },
    null,
    2,
  );
}
