// A JWT bundle as a JwtBundleSource and its look-ups of absent key IDs (spire-core.md §2.1;
// go-spiffe bundle/jwtbundle: Bundle.GetJWTBundleForTrustDomain, FindJWTAuthority,
// HasJWTAuthority), written for the mutation run of jwt-bundle.ts (docs/mutation-testing.md).
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { test } from 'node:test';

import { JwtBundle, TrustDomain, isSpiffeError } from '../index.ts';

const ecJwk = (): JsonWebKey => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JsonWebKey;

test('a bundle is the JWT bundle source of its own trust domain only', () => {
  const td = TrustDomain.parse('example.org');
  const b = JwtBundle.fromAuthorities(td, new Map([['a', ecJwk()]]));
  assert.equal(b.getJwtBundleForTrustDomain(TrustDomain.parse('example.org')), b);
  assert.throws(
    () => b.getJwtBundleForTrustDomain(TrustDomain.parse('other.org')),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND') && e.message === 'jwtbundle: no JWT bundle for trust domain "other.org"',
  );
});

test('an absent key ID is not found: findAuthority, findKeyObject and hasAuthority answer "none"', () => {
  const td = TrustDomain.parse('example.org');
  const b = JwtBundle.fromAuthorities(td, new Map([['a', ecJwk()]]));
  for (const kid of ['b', '', 'A']) {
    assert.equal(b.findAuthority(kid), undefined, kid);
    assert.equal(b.findKeyObject(kid), undefined, kid);
    assert.equal(b.hasAuthority(kid), false, kid);
  }
  b.removeAuthority('a');
  assert.equal(b.findAuthority('a'), undefined);
  assert.equal(b.hasAuthority('a'), false);
  assert.deepEqual(b.keyObjects(), []);
  assert.equal(b.marshal(), '{"keys":[]}');
});

test('a JWKS given as UTF-8 bytes parses like its text', () => {
  const td = TrustDomain.parse('example.org');
  const text = JSON.stringify({ keys: [{ ...ecJwk(), kid: 'a', use: 'jwt-svid' }] });
  const fromBytes = JwtBundle.parse(td, new TextEncoder().encode(text));
  assert.equal(fromBytes.equals(JwtBundle.parse(td, text)), true);
  assert.deepEqual([...fromBytes.authorities().keys()], ['a']);
});
