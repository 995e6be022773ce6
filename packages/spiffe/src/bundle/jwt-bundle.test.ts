import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { generateKeyPairSync as gen } from 'node:crypto';
import { CompactSign } from 'jose';
import { JwtBundle, TrustDomain, isSpiffeError, parseAndValidateJwtSvid } from '../index.ts';

const td = TrustDomain.parse('example.org');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = (k: KeyObject): JsonWebKey => k.export({ format: 'jwk' }) as JsonWebKey;
const ecJwk = jwk(ec.publicKey);

test('JwtBundle.parse reads a Workload API JWKS (plainJwks) and marshals plain JWKS', () => {
  const doc = JSON.stringify({
    keys: [
      { kty: 'EC', kid: 'k1', use: 'jwt-svid', ...ecJwk },
      { ...jwk(rsa.publicKey), kid: 'k2' },
    ],
  });
  const b = JwtBundle.parse(td, doc, { plainJwks: true });
  assert.deepEqual([...b.authorities().keys()], ['k1', 'k2']);
  assert.deepEqual(b.findAuthority('k1'), { kty: 'EC', kid: 'k1', crv: 'P-256', x: ecJwk.x, y: ecJwk.y });
  assert.equal(b.findAuthority('nope'), undefined);
  const out = JSON.parse(b.marshal()) as { keys: Array<Record<string, unknown>> };
  assert.deepEqual(Object.keys(out.keys[0] ?? {}), ['kty', 'kid', 'crv', 'x', 'y']);
  assert.deepEqual(Object.keys(out.keys[1] ?? {}), ['kty', 'kid', 'n', 'e']);
  assert.ok(JwtBundle.parse(td, new TextEncoder().encode(b.marshal()), { plainJwks: true }).equals(b));
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
  const k = (extra: Record<string, unknown>): string => JSON.stringify({ keys: [{ ...ecJwk, kid: 'k', use: 'jwt-svid', ...extra }] });
  const bad: Array<[string, () => unknown, RegExp]> = [
    ['not JSON', () => JwtBundle.parse(td, '{'), /^jwtbundle: unable to parse JWKS/],
    ['keys not an array', () => JwtBundle.parse(td, '{"keys":{}}'), /"keys" must be an array/],
    [
      'missing kid',
      () => JwtBundle.parse(td, JSON.stringify({ keys: [ecJwk] }), { plainJwks: true }),
      /^jwtbundle: error adding authority 0 of JWKS: keyID cannot be empty$/,
    ],
    [
      'duplicate kid',
      () =>
        JwtBundle.parse(
          td,
          JSON.stringify({
            keys: [
              { ...ecJwk, kid: 'k' },
              { ...ecJwk, kid: 'k' },
            ],
          }),
          { plainJwks: true },
        ),
      /authority 1 of JWKS: duplicate keyID "k"/,
    ],
    ['private key', () => JwtBundle.parse(td, k({ d: 'AAAA' })), /must be a public key/],
    ['kty missing', () => JwtBundle.parse(td, k({ kty: undefined })), /authority 0 of JWKS: invalid JWK for keyID "k": missing or invalid "kty"$/],
    ['kty not a string', () => JwtBundle.parse(td, k({ kty: 7 })), /missing or invalid "kty"$/],
    ['use not a string', () => JwtBundle.parse(td, k({ use: ['jwt-svid'] })), /authority 0 of JWKS: "use" must be a string$/],
    ['crv not a string', () => JwtBundle.parse(td, k({ crv: 256 })), /missing or invalid "crv"$/],
    ['x not a string', () => JwtBundle.parse(td, k({ x: 1 })), /missing or invalid "x"$/],
    ['y missing', () => JwtBundle.parse(td, k({ y: undefined })), /missing or invalid "y"$/],
    ['x not base64url', () => JwtBundle.parse(td, k({ x: 'a+b/' })), /"x" is not base64url$/],
    ['addAuthority with an unusable key', () => new JwtBundle(td).addAuthority('k', { ...ecJwk, x: ecJwk.y as string }), /invalid key material/],
    ['duplicate member', () => JwtBundle.parse(td, '{"keys":[],"keys":[]}'), /duplicate member/],
    ['addAuthority with empty kid', () => new JwtBundle(td).addAuthority('', ecJwk), /keyID cannot be empty/],
  ];
  for (const [name, f, re] of bad) assert.throws(f, (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && re.test(e.message), name);
});

test('JWT-SVID §6.2, Trust Domain and Bundle §4.2.2: a key marked x509-svid never validates a JWT-SVID', async () => {
  const x509Key = gen('ec', { namedCurve: 'P-256' });
  const doc = JSON.stringify({
    keys: [
      { ...jwk(x509Key.publicKey), use: 'x509-svid', kid: 'x' },
      { ...jwk(rsa.publicKey), use: 'jwt-svid', kid: 'j' },
    ],
  });
  for (const opts of [{}, { plainJwks: true }]) {
    const b = JwtBundle.parse(td, doc, opts);
    assert.deepEqual([...b.authorities().keys()], ['j'], JSON.stringify(opts));
    const now = Math.floor(Date.now() / 1000);
    const token = await new CompactSign(new TextEncoder().encode(JSON.stringify({ sub: 'spiffe://example.org/w', aud: ['a'], exp: now + 60 })))
      .setProtectedHeader({ alg: 'ES256', kid: 'x' })
      .sign(x509Key.privateKey);
    await assert.rejects(parseAndValidateJwtSvid(token, b, ['a']), /no JWT authority "x"/);
  }
});

test('Trust Domain and Bundle §4.2.2: a key without use is ignored unless the source is a plain JWKS', () => {
  const doc = JSON.stringify({
    keys: [
      { ...ecJwk, kid: 'plain' },
      { ...jwk(rsa.publicKey), kid: 'sig', use: 'sig' },
      { ...ecJwk, kid: 'enc', use: 'enc' },
    ],
  });
  assert.equal(JwtBundle.parse(td, doc).authorities().size, 0);
  assert.deepEqual([...JwtBundle.parse(td, doc, { plainJwks: true }).authorities().keys()], ['plain', 'sig']);
});

test('Trust Domain and Bundle §4.1.3, §4.2.1: a key of unknown kty is skipped, the rest of the bundle kept', () => {
  const doc = JSON.stringify({
    keys: [
      { kty: 'XYZ', kid: 'u', use: 'jwt-svid', foo: 'bar' },
      { kty: 'oct', kid: 's', use: 'jwt-svid', k: 'AAAA' },
      { ...ecJwk, kid: 'good', use: 'jwt-svid' },
    ],
  });
  for (const opts of [{}, { plainJwks: true }]) assert.deepEqual([...JwtBundle.parse(td, doc, opts).authorities().keys()], ['good'], JSON.stringify(opts));
});

test('Trust Domain and Bundle §4.1.3, §4.2.1: an otherwise unusable key (curve, key material) is skipped, the rest of the bundle kept', async () => {
  const k1 = gen('ec', { namedCurve: 'secp256k1' });
  const x25519 = gen('x25519');
  const keys = [
    { ...jwk(k1.publicKey), kid: 'secp256k1', use: 'jwt-svid' },
    { ...jwk(x25519.publicKey), kid: 'x25519', use: 'jwt-svid' },
    { ...ecJwk, x: ecJwk.y, kid: 'off-curve', use: 'jwt-svid' },
    // No kid either: an unusable key is ignored whole, its other faults included.
    { ...ecJwk, crv: 'P-192', use: 'jwt-svid' },
    { ...ecJwk, kid: 'good', use: 'jwt-svid' },
    // Its kid repeats a skipped key's: not a duplicate, the skipped key never counted.
    { ...jwk(rsa.publicKey), kid: 'off-curve', use: 'jwt-svid' },
  ];
  for (const opts of [{}, { plainJwks: true }]) {
    const b = JwtBundle.parse(td, JSON.stringify({ keys }), opts);
    assert.deepEqual([...b.authorities().keys()], ['good', 'off-curve'], JSON.stringify(opts));
    // The kept keys validate JWT-SVIDs.
    const now = Math.floor(Date.now() / 1000);
    const token = await new CompactSign(new TextEncoder().encode(JSON.stringify({ sub: 'spiffe://example.org/w', aud: ['a'], exp: now + 60 })))
      .setProtectedHeader({ alg: 'ES256', kid: 'good' })
      .sign(ec.privateKey);
    assert.equal((await parseAndValidateJwtSvid(token, b, ['a'])).id.toString(), 'spiffe://example.org/w');
  }
});
