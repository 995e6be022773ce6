import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { JwtBundle, TrustDomain, isSpiffeError } from '../index.ts';

const td = TrustDomain.parse('example.org');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = (k: KeyObject): JsonWebKey => k.export({ format: 'jwk' }) as JsonWebKey;
const ecJwk = jwk(ec.publicKey);

test('JwtBundle.parse reads a Workload API JWKS, ignoring use, and marshals plain JWKS', () => {
  const doc = JSON.stringify({ keys: [{ kty: 'EC', kid: 'k1', use: 'jwt-svid', ...ecJwk }, { ...jwk(rsa.publicKey), kid: 'k2' }] });
  const b = JwtBundle.parse(td, doc);
  assert.deepEqual([...b.authorities().keys()], ['k1', 'k2']);
  assert.deepEqual(b.findAuthority('k1'), { kty: 'EC', kid: 'k1', crv: 'P-256', x: ecJwk.x, y: ecJwk.y });
  assert.equal(b.findAuthority('nope'), undefined);
  const out = JSON.parse(b.marshal()) as { keys: Array<Record<string, unknown>> };
  assert.deepEqual(Object.keys(out.keys[0] ?? {}), ['kty', 'kid', 'crv', 'x', 'y']);
  assert.deepEqual(Object.keys(out.keys[1] ?? {}), ['kty', 'kid', 'n', 'e']);
  assert.ok(JwtBundle.parse(td, new TextEncoder().encode(b.marshal())).equals(b));
  assert.equal(JwtBundle.parse(td, '{}').authorities().size, 0);
});

test('JwtBundle add/remove authorities', () => {
  const b = new JwtBundle(td);
  b.addAuthority('a', ecJwk);
  assert.ok(b.hasAuthority('a'));
  b.addAuthority('a', jwk(rsa.publicKey));
  assert.equal(b.findAuthority('a')?.kty, 'RSA');
  b.removeAuthority('a');
  assert.equal(b.authorities().size, 0);
});

test('JwtBundle rejects invalid JWKS documents and keys', () => {
  const k = (extra: Record<string, unknown>): string => JSON.stringify({ keys: [{ ...ecJwk, kid: 'k', ...extra }] });
  const bad: Array<[string, () => unknown, RegExp]> = [
    ['not JSON', () => JwtBundle.parse(td, '{'), /^jwtbundle: unable to parse JWKS/],
    ['keys not an array', () => JwtBundle.parse(td, '{"keys":{}}'), /"keys" must be an array/],
    ['missing kid', () => JwtBundle.parse(td, JSON.stringify({ keys: [ecJwk] })), /^jwtbundle: error adding authority 0 of JWKS: keyID cannot be empty$/],
    ['duplicate kid', () => JwtBundle.parse(td, JSON.stringify({ keys: [{ ...ecJwk, kid: 'k' }, { ...ecJwk, kid: 'k' }] })), /authority 1 of JWKS: duplicate keyID "k"/],
    ['private key', () => JwtBundle.parse(td, k({ d: 'AAAA' })), /must be a public key/],
    ['symmetric key', () => JwtBundle.parse(td, JSON.stringify({ keys: [{ kty: 'oct', k: 'AAAA', kid: 'k' }] })), /must be a public key|unsupported key type/],
    ['unknown kty', () => JwtBundle.parse(td, JSON.stringify({ keys: [{ kty: 'XYZ', kid: 'k' }] })), /unsupported key type/],
    ['point not on curve', () => JwtBundle.parse(td, k({ x: ecJwk.y })), /invalid key material/],
    ['duplicate member', () => JwtBundle.parse(td, '{"keys":[],"keys":[]}'), /duplicate member/],
    ['addAuthority with empty kid', () => new JwtBundle(td).addAuthority('', ecJwk), /keyID cannot be empty/],
  ];
  for (const [name, f, re] of bad) assert.throws(f, (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && re.test(e.message), name);
});
