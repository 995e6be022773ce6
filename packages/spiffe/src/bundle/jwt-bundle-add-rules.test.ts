// JwtBundle.addAuthority's order of checks and its error classes (go-spiffe jwtbundle.AddJWTAuthority:
// an empty key ID is refused before the key is looked at), written for the mutation run of
// jwt-bundle.ts (docs/mutation-testing.md).
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { test } from 'node:test';

import { JwtBundle, TrustDomain, isSpiffeError } from '../index.ts';

test('addAuthority: an empty key ID is refused as such, whatever the key', () => {
  const b = new JwtBundle(TrustDomain.parse('example.org'));
  const good = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JsonWebKey;
  for (const jwk of [good, { kty: 'XYZ' }, { kty: 'EC', crv: 'P-256', x: 1 } as unknown as JsonWebKey, {}]) {
    assert.throws(
      () => b.addAuthority('', jwk),
      (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && e.message === 'jwtbundle: keyID cannot be empty' && e.cause === undefined,
      JSON.stringify(jwk),
    );
  }
  assert.equal(b.empty(), true);
});

test('addAuthority: only JWK errors become bundle errors; anything else thrown while reading the key passes through', () => {
  const b = new JwtBundle(TrustDomain.parse('example.org'));
  const failure = new RangeError('reading the key failed');
  const jwk = {
    get kty(): string {
      throw failure;
    },
  } as unknown as JsonWebKey;
  assert.throws(
    () => b.addAuthority('k', jwk),
    (e: unknown) => e === failure,
  );
  assert.equal(b.hasAuthority('k'), false);
});
