import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JwtBundle, JwtBundleSet, TrustDomain, X509Bundle, X509BundleSet, concatDer, derToPem, isSpiffeError } from '../index.ts';
import { makePki } from '../testdata/fixtures.ts';

const td = TrustDomain.parse('example.org');
const other = TrustDomain.parse('other.org');
const pki = await makePki('example.org');
const { root, intermediate } = pki;

test('X509Bundle add/has/remove keeps order and ignores duplicates', () => {
  const b = new X509Bundle(td);
  b.addAuthority(root.der);
  b.addAuthority(intermediate.der);
  b.addAuthority(root.der);
  assert.deepEqual(b.authorities(), [root.der, intermediate.der]);
  assert.ok(b.hasAuthority(intermediate.der));
  b.removeAuthority(root.der);
  assert.deepEqual(b.authorities(), [intermediate.der]);
  assert.ok(!b.hasAuthority(root.der));
  // authorities() returns copies
  b.authorities()[0]?.fill(0);
  assert.deepEqual(b.authorities(), [intermediate.der]);
});

test('X509Bundle parse/marshal (PEM) and parseRaw/marshalRaw (concatenated DER) round-trip', () => {
  const b = X509Bundle.fromAuthorities(td, [root.der, intermediate.der]);
  const pem = b.marshal();
  assert.equal(pem, derToPem(root.der, 'CERTIFICATE') + derToPem(intermediate.der, 'CERTIFICATE'));
  assert.ok(X509Bundle.parse(td, pem).equals(b));
  assert.ok(X509Bundle.parseRaw(td, concatDer([root.der, intermediate.der])).equals(b));
  assert.deepEqual(b.marshalRaw(), concatDer([root.der, intermediate.der]));
  assert.equal(X509Bundle.parse(td, '').authorities().length, 0);
  assert.ok(!b.equals(X509Bundle.fromAuthorities(other, [root.der, intermediate.der])));
  assert.ok(!b.equals(X509Bundle.fromAuthorities(td, [intermediate.der, root.der])));
});

test('X509Bundle rejects non-certificates with ERR_BUNDLE_INVALID', () => {
  const bad: Array<[string, () => unknown, RegExp]> = [
    [
      'bad base64 in PEM',
      () => X509Bundle.parse(td, '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n'),
      /^x509bundle: cannot parse certificate: pem: invalid base64/,
    ],
    [
      'garbage in PEM',
      () => X509Bundle.parse(td, derToPem(Uint8Array.from([0x30, 0x00]), 'CERTIFICATE')),
      /^x509bundle: cannot parse certificate: x509: malformed/,
    ],
    ['truncated raw', () => X509Bundle.parseRaw(td, root.der.subarray(0, 10)), /^x509bundle: cannot parse certificate: der: truncated/],
    ['trailing byte in a certificate', () => X509Bundle.fromAuthorities(td, [concatDer([root.der, Uint8Array.from([0])])]), /trailing data/],
  ];
  for (const [name, f, re] of bad) assert.throws(f, (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_INVALID') && re.test(e.message), name);
});

test('bundles and bundle sets are sources for their own trust domains only', () => {
  const b = X509Bundle.fromAuthorities(td, [root.der]);
  assert.equal(b.getX509BundleForTrustDomain(td), b);
  assert.throws(
    () => b.getX509BundleForTrustDomain(other),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND') && e.message === 'x509bundle: no X.509 bundle for trust domain "other.org"',
  );
  const set = new X509BundleSet([b]);
  assert.ok(set.has(td));
  assert.equal(set.get(td), b);
  assert.equal(set.get(other), undefined);
  assert.throws(
    () => set.getX509BundleForTrustDomain(other),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND') && e.message === 'x509bundle: no X.509 bundle for trust domain "other.org"',
  );
  const ob = new X509Bundle(other);
  set.add(ob);
  assert.deepEqual(
    set.bundles().map((x) => x.trustDomain.name),
    ['example.org', 'other.org'],
  );
  const replacement = new X509Bundle(td);
  set.add(replacement);
  assert.equal(set.getX509BundleForTrustDomain(td), replacement);
  set.remove(td);
  assert.equal(set.size, 1);

  const jb = new JwtBundle(td);
  const jset = new JwtBundleSet([jb]);
  assert.equal(jset.getJwtBundleForTrustDomain(td), jb);
  assert.equal(jb.getJwtBundleForTrustDomain(td), jb);
  assert.throws(
    () => jset.getJwtBundleForTrustDomain(other),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND') && e.message === 'jwtbundle: no JWT bundle for trust domain "other.org"',
  );
  assert.throws(
    () => jb.getJwtBundleForTrustDomain(other),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND'),
  );
  jset.remove(td);
  assert.ok(!jset.has(td));
});
