import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, webcrypto, type KeyObject } from 'node:crypto';
import { X509Svid, concatDer, derToPem, isSpiffeError } from '../index.ts';
import { keyPair, makeCert, makeLeaf, makePki, pkcs8 } from '../testdata/fixtures.ts';
import { idFromCert, innerMessage } from './x509-svid.ts';
import { parseCertificate } from '../internal/x509.ts';

type KeyPair = webcrypto.CryptoKeyPair;

/** A fresh key pair of one WebCrypto algorithm (the fixtures' cache holds P-256 keys only). */
async function keysOf(alg: 'RSA' | 'Ed25519' | 'X25519'): Promise<KeyPair> {
  if (alg === 'RSA') {
    const params = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
    return (await webcrypto.subtle.generateKey(params, true, ['sign', 'verify'])) as KeyPair;
  }
  if (alg === 'Ed25519') return (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as KeyPair;
  return (await webcrypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as KeyPair;
}

/** A workload leaf of `pki` (signed by its EC root) for `keys`, and that key's PKCS#8. */
async function leafFor(keys: KeyPair, uris = ['spiffe://example.org/workload']): Promise<{ der: Uint8Array; key: Uint8Array }> {
  const pki = await makePki('example.org');
  const c = await makeCert({ subject: 'O=SPIRE', issuer: pki.root, keys, ca: false, keyUsage: 1 | 4 | 8, uris });
  return { der: c.der, key: await pkcs8(keys) };
}

const refusal =
  (message: string) =>
  (e: unknown): boolean =>
    isSpiffeError(e, 'ERR_X509SVID_INVALID') && e.message === message;

test('go-spiffe x509svid: RSA, ECDSA and Ed25519 leaf keys are accepted', async () => {
  const pki = await makePki('example.org');
  for (const [alg, keys, type] of [
    ['RSA', await keysOf('RSA'), 'rsa'],
    ['Ed25519', await keysOf('Ed25519'), 'ed25519'],
    ['ECDSA', pki.leafKeys, 'ec'],
  ] as const) {
    const leaf = await leafFor(keys);
    const svid = X509Svid.parseRaw(leaf.der, leaf.key);
    assert.equal(svid.privateKey.asymmetricKeyType, type, alg);
    assert.equal(svid.id.toString(), 'spiffe://example.org/workload', alg);
    // The PEM path applies the same key rule.
    assert.equal(X509Svid.parse(derToPem(leaf.der, 'CERTIFICATE'), derToPem(leaf.key, 'PRIVATE KEY')).privateKey.asymmetricKeyType, type, alg);
  }
});

test('go-spiffe x509svid: a leaf key that cannot sign (X25519) is refused by type, even when it matches the certificate', async () => {
  const leaf = await leafFor(await keysOf('X25519'));
  assert.throws(() => X509Svid.parseRaw(leaf.der, leaf.key), refusal('x509svid: private key validation failed: unsupported private key type x25519'));
});

test('go-spiffe x509svid: a leaf URI SAN that is not a SPIFFE ID is refused with the ID parser reason', async () => {
  const pki = await makePki('example.org');
  const leaf = await leafFor(pki.leafKeys, ['https://example.org/workload']);
  assert.throws(
    () => X509Svid.parseRaw(leaf.der, leaf.key),
    refusal('x509svid: certificate validation failed: cannot get leaf certificate SPIFFE ID: spiffeid: scheme is missing or invalid'),
  );
  // The ID helper that the chain verifier shares reports the same reason, and only its own errors
  // count as reasons.
  let thrown: unknown;
  try {
    idFromCert(parseCertificate(leaf.der));
  } catch (e) {
    thrown = e;
  }
  assert.equal(innerMessage(thrown), 'spiffeid: scheme is missing or invalid');
  assert.equal(innerMessage(new Error('other')), undefined);
  assert.equal(innerMessage('text'), undefined);
  assert.equal(idFromCert(parseCertificate(pki.leaf.der)).toString(), 'spiffe://example.org/workload');
});

test('go-spiffe x509svid: a refusal keeps the error behind it as its cause', async () => {
  const pki = await makePki('example.org');
  const key = await pkcs8(pki.leafKeys);
  const causeOf = (f: () => unknown): unknown => {
    try {
      f();
    } catch (e) {
      assert.ok(isSpiffeError(e, 'ERR_X509SVID_INVALID'));
      return e.cause;
    }
    assert.fail('no refusal');
  };
  const validation = causeOf(() => X509Svid.parseRaw(concatDer([pki.root.der]), key));
  assert.ok(validation instanceof Error);
  assert.equal(validation.message, 'leaf certificate SPIFFE ID must have a non-root path');
  const der = causeOf(() => X509Svid.parseRaw(Uint8Array.from([0x30, 0x03, 0x02]), key));
  assert.ok(der instanceof Error);
  assert.equal(der.message, 'der: truncated value at offset 0');
  const pemKey = causeOf(() => X509Svid.parse(derToPem(pki.leaf.der, 'CERTIFICATE'), '-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n'));
  assert.ok(pemKey instanceof Error);
  assert.match(pemKey.message, /^pem: invalid base64/);
});

test('go-spiffe x509svid: the reason of a certificate or key that does not parse is named, PEM and DER alike', async () => {
  const pki = await makePki('example.org');
  const key = await pkcs8(pki.leafKeys);
  const notACert = Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00]);
  assert.throws(
    () => X509Svid.parse(derToPem(notACert, 'CERTIFICATE'), derToPem(key, 'PRIVATE KEY')),
    refusal('x509svid: cannot parse PEM encoded certificate: x509: malformed certificate: unexpected tag for tbsCertificate'),
  );
  assert.throws(
    () => X509Svid.parseRaw(notACert, key),
    refusal('x509svid: cannot parse DER encoded certificate: x509: malformed certificate: unexpected tag for tbsCertificate'),
  );
  assert.throws(
    () => X509Svid.parse(derToPem(pki.leaf.der, 'CERTIFICATE'), '-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n'),
    refusal('x509svid: cannot parse PEM encoded private key: pem: invalid base64 in "PRIVATE KEY" block'),
  );
  assert.throws(
    () => X509Svid.parse(derToPem(pki.leaf.der, 'CERTIFICATE'), derToPem(Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00]), 'PRIVATE KEY')),
    refusal('x509svid: cannot parse PEM encoded private key: invalid PKCS#8 private key'),
  );
});

test('go-spiffe x509svid: parseRaw refuses input that is not bytes with an SDK error, never a TypeError', async () => {
  const pki = await makePki('example.org');
  const key = await pkcs8(pki.leafKeys);
  for (const certs of [123, 'text', null, undefined]) {
    assert.throws(
      () => X509Svid.parseRaw(certs as unknown as Uint8Array, key),
      refusal('x509svid: cannot parse DER encoded certificate: der: input must be a Uint8Array'),
      String(certs),
    );
  }
  for (const k of [null, undefined, 7, 'key']) {
    assert.throws(
      () => X509Svid.parseRaw(pki.leaf.der, k as unknown as Uint8Array),
      refusal('x509svid: cannot parse DER encoded private key: input must be a Uint8Array'),
      String(k),
    );
  }
});

test('X509Svid.parseRaw: the same chain and key bytes are checked once; each result, the first included, owns its certificates', async () => {
  const pki = await makePki('example.org');
  const key = await pkcs8(pki.leafKeys);
  const otherKey = await pkcs8(await keyPair('unrelated'));
  // A chain that no other test of this file parses, so that its first parse is a miss.
  const leafDer = await makeLeaf(pki, { uris: ['spiffe://example.org/parse-once'] }, pki.intermediate);
  const chain = concatDer([leafDer, pki.intermediate.der]);
  const original = X509Certificate.prototype.checkPrivateKey;
  let keyChecks = 0;
  X509Certificate.prototype.checkPrivateKey = function (this: X509Certificate, k: KeyObject): boolean {
    keyChecks++;
    return original.call(this, k);
  };
  try {
    const first = X509Svid.parseRaw(chain, key);
    assert.equal(keyChecks, 1);
    // The caller may write into its certificates: what is kept for the next parse is not touched.
    const firstLeaf = first.certificates[0] as Uint8Array;
    firstLeaf[30] = (firstLeaf[30] as number) ^ 0xff;
    const again = X509Svid.parseRaw(chain.slice(), key.slice());
    assert.equal(keyChecks, 1, 'the same bytes (in other buffers) are not checked again');
    assert.deepEqual(again.certificates, [leafDer, pki.intermediate.der]);
    assert.equal(again.id.toString(), 'spiffe://example.org/parse-once');
    // Another key for the same chain is checked.
    assert.throws(() => X509Svid.parseRaw(chain, otherKey), refusal('x509svid: private key validation failed: leaf certificate does not match private key'));
    assert.equal(keyChecks, 2);
  } finally {
    X509Certificate.prototype.checkPrivateKey = original;
  }
});
