// JWT bundle rules (spire-core.md §2.1; SPIFFE Trust Domain and Bundle §4; go-spiffe
// bundle/jwtbundle/bundle.go) that jwt-bundle.test.ts does not pin down, written for the mutation
// run of jwt-bundle.ts (docs/mutation-testing.md): the exact refusal texts with their cause, the
// document forms that are an empty bundle, and the bundle's value semantics (copies, clone,
// equality). A separate file, so the mutants that jwt-bundle.test.ts kills keep their results.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { test } from 'node:test';

import { JwtBundle, TrustDomain, isSpiffeError } from '../index.ts';

const td = TrustDomain.parse('example.org');
const jwk = (k: KeyObject): JsonWebKey => k.export({ format: 'jwk' }) as JsonWebKey;
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecJwk = jwk(ec.publicKey);
const ec2Jwk = jwk(ec2.publicKey);

/** The refusal's exact text; `cause` says whether an underlying error is kept as its cause. */
function refused(f: () => unknown, message: string, cause: 'cause' | 'none'): void {
  assert.throws(
    f,
    (e: unknown) => {
      assert.ok(isSpiffeError(e, 'ERR_BUNDLE_INVALID'), String(e));
      assert.equal(e.message, message);
      if (cause === 'cause') assert.ok(e.cause instanceof Error, `${message}: cause kept`);
      else assert.equal(e.cause, undefined, `${message}: no cause`);
      return true;
    },
    message,
  );
}

const doc = (keys: unknown): string => JSON.stringify({ keys });

test('§2.1: a document without keys, or with "keys": null, is an empty bundle', () => {
  for (const text of ['{}', '{"keys":null}', '{"spiffe_sequence":1}']) {
    const b = JwtBundle.parse(td, text);
    assert.equal(b.empty(), true, text);
    assert.equal(b.trustDomain, td);
  }
  assert.equal(JwtBundle.parse(td, doc([])).empty(), true);
});

test('§2.1: a document that is not a JSON object is refused, and a JSON error is kept as the cause', () => {
  for (const text of ['[]', '"keys"', '1', 'null'])
    refused(() => JwtBundle.parse(td, text), 'jwtbundle: unable to parse JWKS: document must be an object', 'none');
  assert.throws(
    () => JwtBundle.parse(td, '{"keys":'),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && e.cause instanceof Error && e.message === `jwtbundle: unable to parse JWKS: ${e.cause.message}`,
  );
  refused(() => JwtBundle.parse(td, Uint8Array.from([0x7b, 0xff, 0x7d])), 'jwtbundle: unable to parse JWKS: invalid UTF-8', 'cause');
});

test('§2.1: each key must be an object with a string "use" and a string "kid", named by its index', () => {
  const good = { ...ecJwk, kid: 'a', use: 'jwt-svid' };
  refused(() => JwtBundle.parse(td, doc([good, 'key'])), 'jwtbundle: error adding authority 1 of JWKS: key must be an object', 'none');
  refused(() => JwtBundle.parse(td, doc([good, null])), 'jwtbundle: error adding authority 1 of JWKS: key must be an object', 'none');
  refused(() => JwtBundle.parse(td, doc([good, { ...ecJwk, use: 7 }])), 'jwtbundle: error adding authority 1 of JWKS: "use" must be a string', 'none');
  refused(
    () => JwtBundle.parse(td, doc([good, { ...ecJwk, kid: 7, use: 'jwt-svid' }])),
    'jwtbundle: error adding authority 1 of JWKS: keyID must be a string',
    'none',
  );
  // A key whose use is not for JWT-SVIDs is skipped before its kid is looked at.
  assert.deepEqual(
    [
      ...JwtBundle.parse(td, doc([good, { ...ecJwk, kid: 7, use: 'x509-svid' }]))
        .authorities()
        .keys(),
    ],
    ['a'],
  );
});

test('§2.1: a bad key member names the key and keeps the JWK error as the cause; without a kid no keyID is named', () => {
  refused(
    () => JwtBundle.parse(td, doc([{ ...ecJwk, kid: 'k', use: 'jwt-svid', x: 1 }])),
    'jwtbundle: error adding authority 0 of JWKS: invalid JWK for keyID "k": missing or invalid "x"',
    'cause',
  );
  refused(
    () => JwtBundle.parse(td, doc([{ ...ecJwk, use: 'jwt-svid', x: 1 }])),
    'jwtbundle: error adding authority 0 of JWKS: invalid JWK: missing or invalid "x"',
    'cause',
  );
  refused(() => JwtBundle.parse(td, doc([{ ...ecJwk, use: 'jwt-svid' }])), 'jwtbundle: error adding authority 0 of JWKS: keyID cannot be empty', 'cause');
  refused(
    () =>
      JwtBundle.parse(
        td,
        doc([
          { ...ecJwk, kid: 'k', use: 'jwt-svid' },
          { ...ec2Jwk, kid: 'k', use: 'jwt-svid' },
        ]),
      ),
    'jwtbundle: error adding authority 1 of JWKS: duplicate keyID "k"',
    'cause',
  );
});

test('addAuthority: the kid must be a non-empty string and the key usable; a repeated kid replaces the key', () => {
  const b = new JwtBundle(td);
  refused(() => b.addAuthority('', ecJwk), 'jwtbundle: keyID cannot be empty', 'none');
  refused(() => b.addAuthority(7 as unknown as string, ecJwk), 'jwtbundle: keyID cannot be empty', 'none');
  refused(() => b.addAuthority('k', { kty: 'XYZ' }), 'jwtbundle: invalid JWK for keyID "k": unsupported key type "XYZ"', 'cause');
  assert.equal(b.empty(), true);
  b.addAuthority('k', ecJwk);
  b.addAuthority('k', ec2Jwk);
  assert.equal(b.authorities().size, 1);
  assert.equal(b.findAuthority('k')?.x, ec2Jwk.x);
});

test('the verified key objects: findKeyObject by kid and keyObjects for every authority', () => {
  const b = JwtBundle.fromAuthorities(
    td,
    new Map([
      ['a', ecJwk],
      ['b', ec2Jwk],
    ]),
  );
  assert.equal(b.findKeyObject('a')?.equals(ec.publicKey), true);
  assert.equal(b.findKeyObject('b')?.equals(ec2.publicKey), true);
  assert.equal(b.findKeyObject('c'), undefined);
  const objects = b.keyObjects();
  assert.equal(objects.length, 2);
  assert.equal(objects[0]?.equals(ec.publicKey), true);
  assert.equal(objects[1]?.equals(ec2.publicKey), true);
});

test('authorities() and findAuthority() return copies; each JWK carries its kid', () => {
  const b = JwtBundle.fromAuthorities(td, new Map([['a', ecJwk]]));
  const listed = b.authorities().get('a');
  assert.equal(listed?.kid, 'a');
  if (listed !== undefined) listed.x = 'changed';
  const found = b.findAuthority('a');
  assert.equal(found?.x, ecJwk.x);
  if (found !== undefined) found.y = 'changed';
  assert.equal(b.findAuthority('a')?.y, ecJwk.y);
  assert.deepEqual(JSON.parse(b.marshal()), { keys: [{ kty: 'EC', kid: 'a', crv: 'P-256', x: ecJwk.x, y: ecJwk.y }] });
});

test('empty(), clone() and equals(): same trust domain, same kids, same keys', () => {
  const one = JwtBundle.fromAuthorities(td, new Map([['a', ecJwk]]));
  assert.equal(one.empty(), false);
  const copy = one.clone();
  assert.notEqual(copy, one);
  assert.equal(copy.trustDomain, td);
  assert.equal(copy.equals(one), true);
  copy.removeAuthority('a');
  assert.equal(copy.empty(), true);
  assert.equal(one.hasAuthority('a'), true, 'the clone is independent');
  assert.equal(one.equals(copy), false);
  assert.equal(copy.equals(one), false);

  assert.equal(one.equals(JwtBundle.fromAuthorities(TrustDomain.parse('example.org'), new Map([['a', ecJwk]]))), true);
  assert.equal(one.equals(JwtBundle.fromAuthorities(TrustDomain.parse('other.org'), new Map([['a', ecJwk]]))), false);
  assert.equal(one.equals(JwtBundle.fromAuthorities(td, new Map([['b', ecJwk]]))), false, 'another kid');
  assert.equal(one.equals(JwtBundle.fromAuthorities(td, new Map([['a', ec2Jwk]]))), false, 'another key');
  const two = JwtBundle.fromAuthorities(
    td,
    new Map([
      ['a', ecJwk],
      ['b', ec2Jwk],
    ]),
  );
  assert.equal(one.equals(two), false);
  assert.equal(two.equals(one), false);
  assert.equal(new JwtBundle(td).equals(new JwtBundle(td)), true);
});
