import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { JwtBundle, SpiffeBundle, TrustDomain, X509Bundle, isSpiffeError, parseBundleMap } from '../index.ts';
import { makePki } from '../testdata/fixtures.ts';

const MAX_UINT64 = 18446744073709551615n;

/** The fixtures every test builds for itself (a mutant that breaks a parser must fail a test, not the file). */
async function setup(): Promise<{
  td: TrustDomain;
  root: Uint8Array;
  other: Uint8Array;
  x509Entry: (over?: Record<string, unknown>) => Record<string, unknown>;
  jwtEntry: (over?: Record<string, unknown>) => Record<string, unknown>;
  jwtKey: JsonWebKey;
}> {
  const td = TrustDomain.parse('example.org');
  const pki = await makePki('example.org');
  const rootJwk = new X509Certificate(pki.root.der).publicKey.export({ format: 'jwk' }) as JsonWebKey;
  const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JsonWebKey;
  const x509Entry = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    use: 'x509-svid',
    kty: 'EC',
    crv: 'P-256',
    x: rootJwk.x,
    y: rootJwk.y,
    x5c: [Buffer.from(pki.root.der).toString('base64')],
    ...over,
  });
  const jwtEntry = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    use: 'jwt-svid',
    kty: 'EC',
    kid: 'k1',
    crv: 'P-256',
    x: jwtKey.x,
    y: jwtKey.y,
    ...over,
  });
  return { td, root: pki.root.der, other: pki.intermediate.der, x509Entry, jwtEntry, jwtKey };
}

const doc = (keys: unknown[], extra: Record<string, unknown> = {}): string => JSON.stringify({ keys, ...extra });

/** The SpiffeError that `f` throws: code ERR_BUNDLE_INVALID, its message and cause. */
function refusal(f: () => unknown): { message: string; cause: unknown } {
  try {
    f();
  } catch (e) {
    assert.ok(isSpiffeError(e, 'ERR_BUNDLE_INVALID'), String(e));
    return { message: e.message, cause: e.cause };
  }
  assert.fail('no refusal');
}

test('SPIFFE bundle §4.1: spiffe_sequence is an unsigned 64-bit integer, 0 and 2^64-1 included', async () => {
  const { td } = await setup();
  assert.equal(SpiffeBundle.parse(td, doc([], { spiffe_sequence: 0 })).sequenceNumber, 0n);
  assert.equal(SpiffeBundle.parse(td, `{"keys":[],"spiffe_sequence":${MAX_UINT64}}`).sequenceNumber, MAX_UINT64);
  assert.equal(
    refusal(() => SpiffeBundle.parse(td, doc([], { spiffe_sequence: -1 }))).message,
    'spiffebundle: spiffe_sequence must be an unsigned 64-bit integer',
  );
  assert.equal(
    refusal(() => SpiffeBundle.parse(td, `{"keys":[],"spiffe_sequence":${MAX_UINT64 + 1n}}`)).message,
    'spiffebundle: spiffe_sequence must be an unsigned 64-bit integer',
  );
  for (const v of ['"1"', 'true', '1.5', 'null', '[1]']) {
    assert.equal(
      refusal(() => SpiffeBundle.parse(td, `{"keys":[],"spiffe_sequence":${v}}`)).message,
      'spiffebundle: spiffe_sequence must be an unsigned integer',
      v,
    );
  }
  // The setter applies the same range.
  const b = new SpiffeBundle(td);
  b.setSequenceNumber(0n);
  assert.equal(b.sequenceNumber, 0n);
  b.setSequenceNumber(MAX_UINT64);
  assert.equal(b.sequenceNumber, MAX_UINT64);
  for (const n of [MAX_UINT64 + 1n, -1n, 1 as unknown as bigint]) {
    assert.equal(refusal(() => b.setSequenceNumber(n)).message, 'spiffebundle: sequence number must be an unsigned 64-bit integer', String(n));
  }
  assert.equal(b.sequenceNumber, MAX_UINT64);
});

test('SPIFFE bundle §4.1: spiffe_refresh_hint is a non-negative whole number of seconds', async () => {
  const { td } = await setup();
  assert.equal(SpiffeBundle.parse(td, doc([], { spiffe_refresh_hint: 0 })).refreshHintSeconds, 0);
  assert.equal(SpiffeBundle.parse(td, doc([], { spiffe_refresh_hint: 2 ** 53 - 1 })).refreshHintSeconds, 2 ** 53 - 1);
  for (const v of ['-1', '1.5', '9007199254740992', '"300"', 'null', '18446744073709551616']) {
    assert.equal(
      refusal(() => SpiffeBundle.parse(td, `{"keys":[],"spiffe_refresh_hint":${v}}`)).message,
      'spiffebundle: spiffe_refresh_hint must be a non-negative integer number of seconds',
      v,
    );
  }
  // The setter rounds up and refuses what is not a finite non-negative number.
  const b = new SpiffeBundle(td);
  b.setRefreshHintSeconds(0);
  assert.equal(b.refreshHintSeconds, 0);
  b.setRefreshHintSeconds(0.2);
  assert.equal(b.refreshHintSeconds, 1);
  for (const s of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.equal(refusal(() => b.setRefreshHintSeconds(s)).message, 'spiffebundle: refresh hint must be a non-negative number of seconds', String(s));
  }
  assert.equal(b.refreshHintSeconds, 1);
});

test('SPIFFE bundle §4: the document and its keys member', async () => {
  const { td } = await setup();
  assert.equal(refusal(() => SpiffeBundle.parse(td, '{"keys":null}')).message, 'spiffebundle: no authorities found');
  assert.equal(refusal(() => SpiffeBundle.parse(td, '{"keys":{}}')).message, 'spiffebundle: unable to parse JWKS: "keys" must be an array');
  assert.equal(refusal(() => SpiffeBundle.parse(td, '"keys"')).message, 'spiffebundle: unable to parse JWKS: document must be an object');
  const bad = refusal(() => SpiffeBundle.parse(td, '{"keys":[}'));
  assert.match(bad.message, /^spiffebundle: unable to parse JWKS: .+ at offset 9$/);
  assert.ok(bad.cause instanceof Error);
  assert.equal(`spiffebundle: unable to parse JWKS: ${bad.cause.message}`, bad.message);
  // Bytes are read as UTF-8.
  assert.equal(SpiffeBundle.parse(td, new TextEncoder().encode(doc([], { spiffe_sequence: 4 }))).sequenceNumber, 4n);
});

test('SPIFFE bundle §4.2: key entries (use, kty, x5c, kid) are checked with the entry index named', async () => {
  const { td, x509Entry, jwtEntry } = await setup();
  const cases: Array<[string, unknown[], string]> = [
    ['kty empty', [jwtEntry({ kty: '' })], 'spiffebundle: missing or invalid kty for key entry 0'],
    ['x5c a string', [x509Entry({ x5c: 'MIIB' })], 'spiffebundle: expected a single certificate in x509-svid entry 0; got 0'],
    ['x5c member not a string', [jwtEntry(), x509Entry({ x5c: [5] })], 'spiffebundle: invalid x5c in x509-svid entry 1'],
    [
      'x5c not a certificate',
      [x509Entry({ x5c: ['MAA='] })],
      'spiffebundle: invalid certificate in x509-svid entry 0: x509: malformed certificate: missing tbsCertificate',
    ],
    ['kid empty', [jwtEntry({ kid: '' })], 'spiffebundle: error adding authority 0 of JWKS: keyID cannot be empty'],
    ['kid not a string', [jwtEntry({ kid: 5 })], 'spiffebundle: error adding authority 0 of JWKS: keyID must be a string'],
    ['duplicate kid', [jwtEntry(), jwtEntry()], 'spiffebundle: error adding authority 1 of JWKS: duplicate keyID "k1"'],
    ['private key', [jwtEntry({ d: 'AAAA' })], 'spiffebundle: invalid JWK in jwt-svid entry 0: JWK must be a public key (has "d")'],
  ];
  for (const [name, keys, message] of cases) {
    assert.equal(refusal(() => SpiffeBundle.parse(td, doc(keys))).message, message, name);
  }
  // strict: an empty use is a missing one.
  assert.equal(refusal(() => SpiffeBundle.parse(td, doc([jwtEntry({ use: '' })]), { strict: true })).message, 'spiffebundle: missing use for key entry 0');
  assert.equal(SpiffeBundle.parse(td, doc([jwtEntry({ use: '' })])).empty(), true);
  // A JWK refusal keeps the JWK error as its cause.
  const jwk = refusal(() => SpiffeBundle.parse(td, doc([jwtEntry({ crv: 5 })])));
  assert.ok(jwk.cause instanceof Error);
  assert.equal(jwk.cause.message, 'missing or invalid "crv"');
});

test('SPIFFE bundle: authorities added by hand are checked, the refusal without the inner package prefix', async () => {
  const { td, root, jwtKey } = await setup();
  const b = new SpiffeBundle(td);
  const x = refusal(() => b.addX509Authority(Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00])));
  assert.equal(x.message, 'spiffebundle: cannot parse certificate: x509: malformed certificate: unexpected tag for tbsCertificate');
  assert.ok(isSpiffeError(x.cause, 'ERR_BUNDLE_INVALID'));
  const j = refusal(() => b.addJwtAuthority('', jwtKey));
  assert.equal(j.message, 'spiffebundle: keyID cannot be empty');
  assert.ok(isSpiffeError(j.cause, 'ERR_BUNDLE_INVALID'));
  assert.equal(
    refusal(() => b.addJwtAuthority('k', { ...jwtKey, d: 'AAAA' })).message,
    'spiffebundle: invalid JWK for keyID "k": JWK must be a public key (has "d")',
  );
  assert.ok(b.empty());
  b.addX509Authority(root);
  assert.ok(!b.empty());
  const onlyJwt = SpiffeBundle.fromParts(td, { jwt: new Map([['k', jwtKey]]) });
  assert.ok(!onlyJwt.empty());
  assert.ok(onlyJwt.findJwtAuthority('k') !== undefined);
});

test('SPIFFE bundle: equality needs the same trust domain, sequence, refresh hint and authorities; a clone keeps them all', async () => {
  const { td, root, other, jwtKey } = await setup();
  const parts = { x509: [root], jwt: new Map([['k', jwtKey]]), sequenceNumber: 7n, refreshHintSeconds: 60 };
  const a = SpiffeBundle.fromParts(td, parts);
  assert.ok(a.equals(SpiffeBundle.fromParts(td, parts)));
  const variants: Array<[string, SpiffeBundle]> = [
    ['trust domain', SpiffeBundle.fromParts(TrustDomain.parse('other.org'), parts)],
    ['sequence', SpiffeBundle.fromParts(td, { ...parts, sequenceNumber: 8n })],
    ['no sequence', SpiffeBundle.fromParts(td, { x509: parts.x509, jwt: parts.jwt, refreshHintSeconds: parts.refreshHintSeconds })],
    ['refresh hint', SpiffeBundle.fromParts(td, { ...parts, refreshHintSeconds: 61 })],
    ['x509 authorities', SpiffeBundle.fromParts(td, { ...parts, x509: [other] })],
    ['jwt authorities', SpiffeBundle.fromParts(td, { ...parts, jwt: new Map([['k2', jwtKey]]) })],
  ];
  for (const [name, v] of variants) {
    assert.equal(a.equals(v), false, name);
    assert.equal(v.equals(a), false, name);
  }
  const c = a.clone();
  assert.ok(c.equals(a));
  assert.equal(c.sequenceNumber, 7n);
  assert.equal(c.refreshHintSeconds, 60);
  // The clone's authorities are its own.
  c.addX509Authority(other);
  c.removeJwtAuthority('k');
  assert.deepEqual(a.x509Authorities(), [root]);
  assert.ok(a.findJwtAuthority('k') !== undefined);
});

test('SPIFFE bundle: X.509 and JWT bundles convert both ways, copies not views', async () => {
  const { td, root, other, jwtKey } = await setup();
  const fromX = SpiffeBundle.fromX509Bundle(X509Bundle.fromAuthorities(td, [root]));
  assert.deepEqual(fromX.x509Authorities(), [root]);
  assert.equal(fromX.jwtAuthorities().size, 0);
  assert.ok(fromX.trustDomain.equals(td));
  const fromJ = SpiffeBundle.fromJwtBundle(JwtBundle.fromAuthorities(td, new Map([['k', jwtKey]])));
  assert.deepEqual([...fromJ.jwtAuthorities().keys()], ['k']);
  assert.equal(fromJ.x509Authorities().length, 0);
  const xb = fromX.x509Bundle();
  xb.addAuthority(other);
  assert.deepEqual(fromX.x509Authorities(), [root]);
  const jb = fromJ.jwtBundle();
  jb.removeAuthority('k');
  assert.ok(fromJ.findJwtAuthority('k') !== undefined);
  assert.deepEqual(fromX.getX509BundleForTrustDomain(td).authorities(), [root]);
  assert.ok(fromJ.getJwtBundleForTrustDomain(td).findAuthority('k') !== undefined);
  const otherTd = TrustDomain.parse('other.org');
  assert.throws(
    () => fromX.getX509BundleForTrustDomain(otherTd),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND') && e.message === 'x509bundle: no X.509 bundle for trust domain "other.org"',
  );
  assert.throws(
    () => fromJ.getJwtBundleForTrustDomain(otherTd),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND') && e.message === 'jwtbundle: no JWT bundle for trust domain "other.org"',
  );
});

test('SPIFFE bundle §4.1: marshal writes spiffe_refresh_hint and spiffe_sequence only when set', async () => {
  const { td } = await setup();
  assert.equal(SpiffeBundle.fromParts(td, { refreshHintSeconds: 5 }).marshal(), '{"keys":[],"spiffe_refresh_hint":5}');
  assert.equal(SpiffeBundle.fromParts(td, { sequenceNumber: 0n }).marshal(), '{"keys":[],"spiffe_sequence":0}');
  assert.equal(SpiffeBundle.fromParts(td, { sequenceNumber: 2n, refreshHintSeconds: 0 }).marshal(), '{"keys":[],"spiffe_sequence":2,"spiffe_refresh_hint":0}');
});

test('SPIFFE bundle map: the document, its trust_domains member and their keys', async () => {
  const { jwtEntry } = await setup();
  // [document, message, whether an inner error is kept as the cause]
  const cases: Array<[string, string, boolean]> = [
    ['[]', 'spiffebundle: bundle map must be an object', false],
    ['{"trust_domains":[]}', 'spiffebundle: bundle map must have a "trust_domains" object', false],
    ['{"trust_domains":', 'spiffebundle: unable to parse bundle map: unexpected character at offset 17', true],
    ['{"trust_domains":{"a.org":{"keys":[]},"a.org":{"keys":[]}}}', 'spiffebundle: duplicate key "a.org" in bundle map', true],
    [
      '{"trust_domains":{"A.org":{"keys":[]}}}',
      'spiffebundle: invalid trust domain key "A.org": trustdomain: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
      true,
    ],
  ];
  for (const [json, message, withCause] of cases) {
    const r = refusal(() => parseBundleMap(json));
    assert.equal(r.message, message, json);
    assert.equal(r.cause instanceof Error, withCause, json);
  }
  // strict applies to every bundle of the map.
  const json = JSON.stringify({ trust_domains: { 'a.org': { keys: [jwtEntry({ use: undefined })] } } });
  assert.equal(parseBundleMap(json).get('a.org')?.empty(), true);
  assert.equal(refusal(() => parseBundleMap(json, { strict: true })).message, 'spiffebundle: missing use for key entry 0');
  assert.equal(parseBundleMap(new TextEncoder().encode('{"trust_domains":{}}')).size, 0);
});
