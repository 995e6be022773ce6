import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, X509Certificate, type JsonWebKey } from 'node:crypto';
import { SpiffeBundle, TrustDomain, isSpiffeError, parseBundleMap } from '../index.ts';
import { makePki } from '../testdata/fixtures.ts';

const td = TrustDomain.parse('example.org');
const pki = await makePki('example.org');
const rootB64 = Buffer.from(pki.root.der).toString('base64');
const rootJwk = new X509Certificate(pki.root.der).publicKey.export({ format: 'jwk' }) as JsonWebKey;
const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JsonWebKey;

const x509Entry = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  use: 'x509-svid',
  kty: 'EC',
  crv: 'P-256',
  x: rootJwk.x,
  y: rootJwk.y,
  x5c: [rootB64],
  ...over,
});
const jwtEntry = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  use: 'jwt-svid',
  kty: 'EC',
  kid: 'kid1',
  crv: 'P-256',
  x: jwtKey.x,
  y: jwtKey.y,
  ...over,
});
const doc = (keys: unknown[], extra: Record<string, unknown> = {}): string => JSON.stringify({ keys, ...extra });

const SPIRE_DOC = `{"keys":[${JSON.stringify(x509Entry())},${JSON.stringify(jwtEntry())}],"spiffe_sequence":3,"spiffe_refresh_hint":300}`;

test('SpiffeBundle.parse reads a SPIRE bundle endpoint document', () => {
  const b = SpiffeBundle.parse(td, SPIRE_DOC);
  assert.deepEqual(b.x509Authorities(), [pki.root.der]);
  assert.deepEqual([...b.jwtAuthorities().keys()], ['kid1']);
  assert.equal(b.sequenceNumber, 3n);
  assert.equal(b.refreshHintSeconds, 300);
  assert.deepEqual(b.x509Bundle().authorities(), [pki.root.der]);
  assert.equal(b.jwtBundle().findAuthority('kid1')?.x, jwtKey.x);
  assert.deepEqual(b.getX509BundleForTrustDomain(td).authorities(), [pki.root.der]);
  assert.throws(
    () => b.getJwtBundleForTrustDomain(TrustDomain.parse('other.org')),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND'),
  );
});

test('SpiffeBundle.marshal emits go-jose member order, std base64 x5c and spiffe_* members', () => {
  const b = SpiffeBundle.parse(td, SPIRE_DOC);
  assert.equal(b.marshal(), SPIRE_DOC);
  assert.equal(b.marshal({ indent: 4 }), JSON.stringify(JSON.parse(SPIRE_DOC), null, 4));
  const empty = SpiffeBundle.fromParts(td, {});
  assert.equal(empty.marshal(), '{"keys":[]}');
  const big = SpiffeBundle.fromParts(td, { x509: [pki.root.der], sequenceNumber: 18446744073709551615n, refreshHintSeconds: 1.2 });
  assert.match(big.marshal(), /"spiffe_sequence":18446744073709551615,"spiffe_refresh_hint":2}$/);
  const again = SpiffeBundle.parse(td, big.marshal());
  assert.equal(again.sequenceNumber, 18446744073709551615n);
  assert.ok(again.equals(big));
});

test('SpiffeBundle.fromParts and mutation', () => {
  const b = SpiffeBundle.fromParts(td, { x509: [pki.root.der], jwt: new Map([['k', jwtKey]]), sequenceNumber: 1n });
  assert.ok(b.hasX509Authority(pki.root.der));
  b.addX509Authority(pki.intermediate.der);
  b.removeX509Authority(pki.root.der);
  assert.deepEqual(b.x509Authorities(), [pki.intermediate.der]);
  b.removeJwtAuthority('k');
  assert.equal(b.findJwtAuthority('k'), undefined);
  assert.ok(!b.empty());
  assert.throws(
    () => b.setSequenceNumber(-1n),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID'),
  );
  const c = b.clone();
  c.addJwtAuthority('z', jwtKey);
  assert.ok(!b.equals(c));
});

test('SpiffeBundle.parse follows the bundle rules (default, go-spiffe-like)', () => {
  const ok: Array<[string, string, number, number]> = [
    ['empty keys', doc([]), 0, 0],
    ['unknown use ignored', doc([x509Entry({ use: 'wit-svid' }), jwtEntry()]), 0, 1],
    ['missing use ignored', doc([x509Entry({ use: undefined })]), 0, 0],
    ['unknown kty ignored', doc([{ use: 'jwt-svid', kty: 'XYZ', kid: 'x' }, jwtEntry()]), 0, 1],
    ['extra members allowed', doc([jwtEntry()], { other: { a: 1 }, spiffe_extra: true }), 0, 1],
    ['x509 and jwt entries', doc([x509Entry(), jwtEntry(), jwtEntry({ kid: 'kid2' })]), 1, 2],
  ];
  for (const [name, json, nx, nj] of ok) {
    const b = SpiffeBundle.parse(td, json);
    assert.equal(b.x509Authorities().length, nx, name);
    assert.equal(b.jwtAuthorities().size, nj, name);
  }
  const bad: Array<[string, string, RegExp]> = [
    ['keys missing', '{"spiffe_sequence":1}', /^spiffebundle: no authorities found$/],
    ['not an object', '[]', /document must be an object/],
    ['x5c missing', doc([x509Entry({ x5c: undefined })]), /^spiffebundle: expected a single certificate in x509-svid entry 0; got 0$/],
    ['x5c empty', doc([x509Entry({ x5c: [] })]), /expected a single certificate in x509-svid entry 0; got 0$/],
    ['x5c with two certificates', doc([jwtEntry(), x509Entry({ x5c: [rootB64, rootB64] })]), /expected a single certificate in x509-svid entry 1; got 2$/],
    ['x5c not std base64', doc([x509Entry({ x5c: [Buffer.from(pki.root.der).toString('base64url')] })]), /invalid base64 x5c/],
    ['x5c not a certificate', doc([x509Entry({ x5c: ['MAA='] })]), /invalid certificate in x509-svid entry 0/],
    ['x5c key differs from JWK', doc([x509Entry({ x: jwtKey.x, y: jwtKey.y })]), /x5c public key does not match the JWK/],
    ['jwt-svid without kid', doc([jwtEntry({ kid: undefined })]), /^spiffebundle: error adding authority 0 of JWKS: keyID cannot be empty$/],
    ['jwt-svid duplicate kid', doc([jwtEntry(), jwtEntry()]), /duplicate keyID "kid1"/],
    ['jwt-svid private key', doc([jwtEntry({ d: 'AAAA' })]), /must be a public key/],
    ['negative sequence', doc([], { spiffe_sequence: -1 }), /spiffe_sequence must be an unsigned 64-bit integer/],
    ['fractional sequence', doc([], { spiffe_sequence: 1.5 }), /spiffe_sequence must be an unsigned integer/],
    ['sequence above uint64', '{"keys":[],"spiffe_sequence":18446744073709551616}', /unsigned 64-bit/],
    ['string refresh hint', doc([], { spiffe_refresh_hint: '300' }), /spiffe_refresh_hint must be/],
    ['duplicate keys member', '{"keys":[],"keys":[]}', /duplicate member "keys"/],
  ];
  for (const [name, json, re] of bad) {
    assert.throws(
      () => SpiffeBundle.parse(td, json),
      (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && re.test(e.message),
      name,
    );
  }
});

test('Trust Domain and Bundle §4.1.3, §4.2.1: SpiffeBundle.parse ignores an unusable key only; malformed members still fail', () => {
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'jwk' }) as JsonWebKey;
  const json = doc([
    x509Entry(),
    jwtEntry({ crv: 'secp256k1', x: k1.x, y: k1.y, kid: 'k1' }),
    jwtEntry({ x: jwtKey.y, kid: 'off-curve' }),
    x509Entry({ crv: 'P-192' }),
    jwtEntry({ kty: 'OKP', crv: 'X448', x: 'AAAA', y: undefined, kid: undefined }),
    jwtEntry(),
  ]);
  const b = SpiffeBundle.parse(td, json);
  assert.equal(b.x509Authorities().length, 1);
  assert.deepEqual([...b.jwtAuthorities().keys()], ['kid1']);
  // SPIRE's rules (strict) keep go-jose's verdict: the whole document fails.
  assert.throws(() => SpiffeBundle.parse(td, json, { strict: true }), /invalid JWK in jwt-svid entry 1: unsupported EC curve "secp256k1"/);
  const bad: Array<[string, string, RegExp]> = [
    ['kty missing', doc([jwtEntry({ kty: undefined })]), /^spiffebundle: missing or invalid kty for key entry 0$/],
    ['kty not a string', doc([jwtEntry({ kty: 1 })]), /missing or invalid kty for key entry 0$/],
    ['use not a string', doc([jwtEntry({ use: 1 })]), /^spiffebundle: use must be a string in key entry 0$/],
    ['crv not a string', doc([jwtEntry({ crv: ['P-256'] })]), /invalid JWK in jwt-svid entry 0: missing or invalid "crv"$/],
    ['y not a string', doc([x509Entry({ y: 5 })]), /invalid JWK in x509-svid entry 0: missing or invalid "y"$/],
    ['key not an object', doc([jwtEntry(), 'key']), /key entry 1 must be an object/],
  ];
  for (const [name, j, re] of bad) {
    assert.throws(
      () => SpiffeBundle.parse(td, j),
      (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && re.test(e.message),
      name,
    );
  }
});

test('SpiffeBundle.parse strict mode applies SPIRE bundleutil.Decode rules', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['missing use', doc([jwtEntry({ use: undefined })]), /^spiffebundle: missing use for key entry 0$/],
    ['unknown use', doc([jwtEntry(), jwtEntry({ use: 'sig' })]), /^spiffebundle: unrecognized use "sig" for key entry 1$/],
    ['missing kid', doc([jwtEntry({ kid: undefined })]), /^spiffebundle: missing key ID in jwt-svid entry 0$/],
    ['unknown kty', doc([{ use: 'jwt-svid', kty: 'XYZ', kid: 'a' }]), /unsupported key type for key entry 0/],
  ];
  for (const [name, json, re] of bad) {
    assert.throws(
      () => SpiffeBundle.parse(td, json, { strict: true }),
      (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && re.test(e.message),
      name,
    );
  }
  assert.equal(SpiffeBundle.parse(td, SPIRE_DOC, { strict: true }).jwtAuthorities().size, 1);
});

test('parseBundleMap reads trust_domains and rejects duplicate trust domain keys', () => {
  const m = parseBundleMap(`{"trust_domains":{"example.org":${SPIRE_DOC},"spiffe://other.org":{"keys":[]}}}`);
  assert.deepEqual([...m.keys()], ['example.org', 'other.org']);
  assert.equal(m.get('other.org')?.trustDomain.name, 'other.org');
  assert.equal(m.get('example.org')?.sequenceNumber, 3n);
  const bad: Array<[string, string, RegExp]> = [
    ['duplicate key', '{"trust_domains":{"a.org":{"keys":[]},"a.org":{"keys":[]}}}', /duplicate key "a.org" in bundle map/],
    ['same TD two spellings', '{"trust_domains":{"a.org":{"keys":[]},"spiffe://a.org":{"keys":[]}}}', /duplicate trust domain "a.org"/],
    ['invalid TD key', '{"trust_domains":{"A.org":{"keys":[]}}}', /invalid trust domain key "A.org"/],
    ['missing trust_domains', '{}', /"trust_domains" object/],
    ['invalid bundle inside', '{"trust_domains":{"a.org":{}}}', /no authorities found/],
  ];
  for (const [name, json, re] of bad) {
    assert.throws(
      () => parseBundleMap(json),
      (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && re.test(e.message),
      name,
    );
  }
  // sanity: createPublicKey accepts the JWKs we marshal
  const k = JSON.parse(SpiffeBundle.parse(td, SPIRE_DOC).marshal()) as { keys: JsonWebKey[] };
  assert.equal(createPublicKey({ key: k.keys[1] as JsonWebKey, format: 'jwk' }).asymmetricKeyType, 'ec');
});
