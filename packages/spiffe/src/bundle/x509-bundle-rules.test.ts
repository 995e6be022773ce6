// X.509 bundle and bundle set rules (spire-core.md §2, §3.2 step 4; go-spiffe
// bundle/x509bundle/bundle.go and x509bundle.Set, jwtbundle.Set) that x509-bundle.test.ts does not
// pin down, written for the mutation run of x509-bundle.ts and set.ts
// (docs/mutation-testing.md). A separate file, so the mutants that x509-bundle.test.ts kills keep
// their incremental results.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { JwtBundle, JwtBundleSet, TrustDomain, X509Bundle, X509BundleSet, derToPem, isSpiffeError } from '../index.ts';
import { makePki } from '../testdata/fixtures.ts';

const td = TrustDomain.parse('example.org');
const pki = await makePki('example.org');
const { root, intermediate } = pki;

test('x509bundle: empty() is true exactly when the bundle has no authority', () => {
  const b = new X509Bundle(td);
  assert.equal(b.empty(), true);
  b.addAuthority(root.der);
  assert.equal(b.empty(), false);
  b.removeAuthority(root.der);
  assert.equal(b.empty(), true);
  assert.equal(X509Bundle.parse(td, '').empty(), true);
});

test('x509bundle: a bundle keeps its own copy of an added authority', () => {
  const der = Uint8Array.from(root.der);
  const b = X509Bundle.fromAuthorities(td, [der]);
  der.fill(0);
  assert.deepEqual(b.authorities(), [root.der]);
  assert.equal(b.hasAuthority(root.der), true);
});

test('x509bundle: clone() is equal to the bundle and independent of it', () => {
  const b = X509Bundle.fromAuthorities(td, [root.der, intermediate.der]);
  const c = b.clone();
  assert.notEqual(c, b);
  assert.equal(c.trustDomain, td);
  assert.equal(c.equals(b), true);
  c.removeAuthority(root.der);
  assert.deepEqual(b.authorities(), [root.der, intermediate.der]);
  assert.equal(c.equals(b), false);
  assert.equal(b.equals(c), false, 'a bundle with more authorities is not equal to one with fewer');
});

test('x509bundle: equality needs the same trust domain and the same authorities in the same order', () => {
  const b = X509Bundle.fromAuthorities(td, [root.der]);
  assert.equal(b.equals(X509Bundle.fromAuthorities(TrustDomain.parse('example.org'), [root.der])), true);
  assert.equal(b.equals(X509Bundle.fromAuthorities(td, [intermediate.der])), false);
  assert.equal(b.equals(X509Bundle.fromAuthorities(td, [root.der, intermediate.der])), false);
  assert.equal(new X509Bundle(td).equals(new X509Bundle(td)), true);
});

test('x509bundle: a certificate that does not parse is refused with its parser error as the cause', () => {
  const notCert = Uint8Array.from([0x30, 0x00]);
  for (const f of [
    () => X509Bundle.fromAuthorities(td, [notCert]),
    () => X509Bundle.parse(td, derToPem(notCert, 'CERTIFICATE')),
    () => X509Bundle.parse(td, '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n'),
    () => X509Bundle.parseRaw(td, root.der.subarray(0, 10)),
  ]) {
    assert.throws(f, (e: unknown) => {
      assert.ok(isSpiffeError(e, 'ERR_BUNDLE_INVALID'));
      assert.ok(e.cause instanceof Error, 'the cause is kept');
      assert.equal(e.message, `x509bundle: cannot parse certificate: ${e.cause.message}`);
      return true;
    });
  }
});

test('x509bundle: PEM blocks of another type are not authorities', () => {
  const pem = derToPem(root.der, 'CERTIFICATE') + derToPem(Uint8Array.from([1, 2, 3]), 'PRIVATE KEY');
  assert.deepEqual(X509Bundle.parse(td, pem).authorities(), [root.der]);
});

test('bundle sets list their bundles sorted by trust domain name, whatever the order of insertion', () => {
  const names = ['c.org', 'a.org', 'b.org'];
  const xset = new X509BundleSet(names.map((n) => new X509Bundle(TrustDomain.parse(n))));
  const jset = new JwtBundleSet(names.map((n) => new JwtBundle(TrustDomain.parse(n))));
  assert.deepEqual(
    xset.bundles().map((b) => b.trustDomain.name),
    ['a.org', 'b.org', 'c.org'],
  );
  assert.deepEqual(
    jset.bundles().map((b) => b.trustDomain.name),
    ['a.org', 'b.org', 'c.org'],
  );
  assert.equal(xset.size, 3);
  assert.equal(jset.size, 3);
  assert.equal(new X509BundleSet().size, 0);
  assert.equal(new JwtBundleSet().size, 0);
});

test('a JWT bundle set holds one bundle per trust domain: add replaces, get and has look up, remove forgets', () => {
  const a = TrustDomain.parse('a.org');
  const first = new JwtBundle(a);
  const second = new JwtBundle(a);
  const set = new JwtBundleSet([first]);
  assert.equal(set.get(a), first);
  assert.equal(set.has(a), true);
  assert.equal(set.get(td), undefined);
  assert.equal(set.has(td), false);
  set.add(second);
  assert.equal(set.size, 1);
  assert.equal(set.get(a), second);
  assert.equal(set.getJwtBundleForTrustDomain(a), second);
  set.remove(a);
  assert.equal(set.size, 0);
  assert.equal(set.get(a), undefined);
});

test('an X.509 bundle set forgets a removed trust domain', () => {
  const b = new X509Bundle(td);
  const set = new X509BundleSet([b]);
  set.remove(td);
  assert.equal(set.has(td), false);
  assert.equal(set.get(td), undefined);
  assert.throws(
    () => set.getX509BundleForTrustDomain(td),
    (e: unknown) => isSpiffeError(e, 'ERR_BUNDLE_NOT_FOUND'),
  );
});
