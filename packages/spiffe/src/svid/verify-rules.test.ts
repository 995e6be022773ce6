// X509-SVID verification rules (spire-core.md §3.2, go-spiffe x509svid.Verify with Go's RFC 5280
// path validation) that verify.test.ts does not pin down: written for the survivors of the
// mutation run of verify.ts (docs/mutation-testing.md). A separate file, so the mutants that
// verify.test.ts kills keep their incremental results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrustDomain, X509Bundle, X509BundleSet, isSpiffeError, verifyX509Svid } from '../index.ts';
import { x509, CA_KU, T0, keyPair, makeCert, makeLeaf, makePki, type Cert, type CertSpec } from '../testdata/fixtures.ts';

const td = TrustDomain.parse('example.org');
const pki = await makePki('example.org');
const bundle = X509Bundle.fromAuthorities(td, [pki.root.der]);
const set = new X509BundleSet([bundle]);

const leafOf = (issuer: Cert, over: Partial<CertSpec> = {}): Promise<Uint8Array> => makeLeaf(pki, over, issuer);

function refusal(code: 'ERR_X509SVID_INVALID' | 'ERR_X509SVID_UNTRUSTED', message: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isSpiffeError(e), `not a SpiffeError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.message, message);
    return true;
  };
}

test('X509-SVID §3.2 step 1: a chain that is not an array is refused as an empty chain', () => {
  assert.throws(
    () => verifyX509Svid('not a chain' as unknown as Uint8Array[], set, { now: T0 }),
    refusal('ERR_X509SVID_INVALID', 'x509svid: empty certificates chain'),
  );
});

test('X509-SVID §3.2 step 1: a null bundle source is refused before the bundle is read', () => {
  assert.throws(
    () => verifyX509Svid([pki.leaf.der], null as unknown as X509BundleSet, { now: T0 }),
    refusal('ERR_X509SVID_INVALID', 'x509svid: bundleSource is required'),
  );
});

test('X509-SVID §3.2 step 5: a verification time that is not a Date is refused', () => {
  assert.throws(
    () => verifyX509Svid([pki.leaf.der], set, { now: T0.getTime() as unknown as Date }),
    refusal('ERR_X509SVID_INVALID', 'x509svid: invalid verification time'),
  );
});

test('X509-SVID §3.2 step 4: a bundle source that throws a non-Error is reported with its value', () => {
  const source = {
    getX509BundleForTrustDomain(): X509Bundle {
      throw 'bundle store offline';
    },
  };
  assert.throws(
    () => verifyX509Svid([pki.leaf.der], source, { now: T0 }),
    refusal('ERR_X509SVID_UNTRUSTED', 'x509svid: could not get X509 bundle: bundle store offline'),
  );
});

test('X509-SVID §3.2 step 5: a signing certificate without a keyUsage extension may sign (keyCertSign is only required when keyUsage is present)', async () => {
  const inter = await makeCert({ subject: 'CN=ca without key usage', issuer: pki.root, keys: await keyPair('no-ku-inter'), ca: true });
  const leaf = await leafOf(inter);
  const r = verifyX509Svid([leaf, inter.der], set, { now: T0 });
  assert.deepEqual(r.verifiedChains, [[leaf, inter.der, pki.root.der]]);
});

test('X509-SVID §3.2 step 5: a chain that also carries the bundle root verifies once, without looping through the root again', () => {
  const r = verifyX509Svid([pki.leaf.der, pki.root.der], set, { now: T0 });
  assert.deepEqual(r.verifiedChains, [[pki.leaf.der, pki.root.der]]);
});

test('X509-SVID §3.2 step 5: every unknown critical extension is named in the refusal', async () => {
  const leaf = await leafOf(pki.root, {
    extraExtensions: [
      new x509.Extension('1.2.3.4.5', true, Uint8Array.from([0x05, 0x00])),
      new x509.Extension('1.2.3.4.6', true, Uint8Array.from([0x05, 0x00])),
    ],
  });
  assert.throws(
    () => verifyX509Svid([leaf], set, { now: T0 }),
    refusal('ERR_X509SVID_UNTRUSTED', 'x509svid: could not verify leaf certificate: x509: unhandled critical extension 1.2.3.4.5, 1.2.3.4.6'),
  );
});

test('X509-SVID §3.2 step 5: an issuer with the right name but another key is refused with the signature error', async () => {
  const forger = await makeCert({ subject: pki.root.subject, keys: await keyPair('forger'), ca: true, keyUsage: CA_KU });
  const leaf = await leafOf(forger);
  assert.throws(
    () => verifyX509Svid([leaf], set, { now: T0 }),
    refusal(
      'ERR_X509SVID_UNTRUSTED',
      'x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority (signature verification failed)',
    ),
  );
});

test('X509-SVID §3.2 step 5: a leaf whose issuer name matches no authority is refused as signed by an unknown authority', async () => {
  const stranger = await makeCert({ subject: 'CN=stranger', keys: pki.rootKeys, ca: true, keyUsage: CA_KU });
  const leaf = await leafOf(stranger);
  assert.throws(
    () => verifyX509Svid([leaf], set, { now: T0 }),
    refusal('ERR_X509SVID_UNTRUSTED', 'x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority'),
  );
});

// Go crypto/x509 (maxChainSignatureChecks = 100): path building stops after 100 signature checks.
test('X509-SVID §3.2 step 5: path building stops after 100 signature checks', async () => {
  const busyKeys = await keyPair('busy-issuer');
  const real = await makeCert({ subject: 'CN=busy', issuer: pki.root, keys: busyKeys, ca: true, keyUsage: CA_KU });
  const leaf = await leafOf(real);
  const decoyKeys = await keyPair('decoy');
  const decoys: Uint8Array[] = [];
  for (let i = 0; i < 101; i++) decoys.push((await makeCert({ subject: 'CN=busy', issuer: pki.root, keys: decoyKeys, ca: true, keyUsage: CA_KU })).der);
  // 100 decoys: each signature check fails, the limit is not reached.
  assert.throws(
    () => verifyX509Svid([leaf, ...decoys.slice(0, 100)], set, { now: T0 }),
    refusal(
      'ERR_X509SVID_UNTRUSTED',
      'x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority (signature verification failed)',
    ),
  );
  // 101 decoys: the 101st check is not made.
  assert.throws(
    () => verifyX509Svid([leaf, ...decoys], set, { now: T0 }),
    refusal(
      'ERR_X509SVID_UNTRUSTED',
      'x509svid: could not verify leaf certificate: x509: signature check attempts limit reached while verifying certificate chain',
    ),
  );
  // the real issuer behind 98 decoys is still found (its check is the 99th, the root's the 100th).
  const r = verifyX509Svid([leaf, ...decoys.slice(0, 98), real.der], set, { now: T0 });
  assert.deepEqual(r.verifiedChains, [[leaf, real.der, pki.root.der]]);
});

test('X509-SVID §3.2 step 5: a verified chain holds at most 16 certificates (leaf, 14 intermediates, root)', async () => {
  const keys = await keyPair('ladder');
  const ladder: Cert[] = [];
  let issuer = pki.root;
  for (let i = 1; i <= 15; i++) {
    issuer = await makeCert({ subject: `CN=rung ${i}`, issuer, keys, ca: true, keyUsage: CA_KU });
    ladder.push(issuer);
  }
  const below = (n: number): Uint8Array[] =>
    ladder
      .slice(0, n)
      .reverse()
      .map((c) => c.der);
  const leaf14 = await leafOf(ladder[13] as Cert);
  const r = verifyX509Svid([leaf14, ...below(14)], set, { now: T0 });
  assert.equal(r.verifiedChains[0]?.length, 16);
  const leaf15 = await leafOf(ladder[14] as Cert);
  assert.throws(
    () => verifyX509Svid([leaf15, ...below(15)], set, { now: T0 }),
    refusal('ERR_X509SVID_UNTRUSTED', 'x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority'),
  );
});

test('X509-SVID §3.2: a refusal caused by a parse or bundle-source failure carries that failure as its cause', async () => {
  const garbage = Uint8Array.from([0x30, 0x03, 1, 2, 3]);
  assert.throws(
    () => verifyX509Svid([garbage], set, { now: T0 }),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID') && e.cause instanceof Error && e.message.endsWith(e.cause.message),
  );
  const noUri = await leafOf(pki.root, { uris: [], dns: ['x.example.org'] });
  assert.throws(
    () => verifyX509Svid([noUri], set, { now: T0 }),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID') && e.cause instanceof Error && e.cause.message === 'certificate contains no URI SAN',
  );
  const offline = new Error('bundle store offline');
  const source = {
    getX509BundleForTrustDomain(): X509Bundle {
      throw offline;
    },
  };
  assert.throws(
    () => verifyX509Svid([pki.leaf.der], source, { now: T0 }),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_UNTRUSTED') && e.cause === offline,
  );
});
