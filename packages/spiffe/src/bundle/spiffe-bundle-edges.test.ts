import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { SpiffeBundle, TrustDomain, isSpiffeError } from '../index.ts';

const jwtKey = (): JsonWebKey => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JsonWebKey;

test('SPIRE bundleutil.Decode (strict): an empty kid is a missing key ID', () => {
  const td = TrustDomain.parse('example.org');
  const json = JSON.stringify({ keys: [{ use: 'jwt-svid', kid: '', ...jwtKey() }] });
  assert.throws(
    () => SpiffeBundle.parse(td, json, { strict: true }),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && e.message === 'spiffebundle: missing key ID in jwt-svid entry 0',
  );
});

test('SPIFFE bundle §4.1: marshal writes the sequence number where it belongs, whatever the keys hold', () => {
  const td = TrustDomain.parse('example.org');
  // An empty string member in a key must come back as it was, not take the sequence number's place.
  const b = SpiffeBundle.fromParts(td, { jwt: new Map([['k', { ...jwtKey(), alg: '' } as JsonWebKey]]), sequenceNumber: 5n });
  const again = SpiffeBundle.parse(td, b.marshal());
  assert.equal(again.sequenceNumber, 5n);
  assert.ok(again.equals(b));
});
