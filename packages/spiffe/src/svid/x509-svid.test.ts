import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Svid, concatDer, derToPem, isSpiffeError } from '../index.ts';
import { CA_KU, KU, LEAF_KEY_USAGE, T0, keyPair, makeCert, makeLeaf, makePki, pkcs8, type Cert, type CertSpec } from '../testdata/fixtures.ts';

const pki = await makePki('example.org');
const leafKey = await pkcs8(pki.leafKeys);
const otherKey = await pkcs8(await keyPair('unrelated'));

const leaf = (over: Partial<CertSpec> = {}, issuer: Cert = pki.root): Promise<Uint8Array> => makeLeaf(pki, over, issuer);

test('X509Svid.parseRaw accepts a SPIRE-shaped SVID and round-trips DER and PEM', () => {
  const chain = concatDer([pki.leafViaIntermediate.der, pki.intermediate.der]);
  const svid = X509Svid.parseRaw(chain, leafKey);
  assert.equal(svid.id.toString(), 'spiffe://example.org/workload');
  assert.deepEqual(svid.certificates, [pki.leafViaIntermediate.der, pki.intermediate.der]);
  assert.equal(svid.privateKey.asymmetricKeyType, 'ec');
  assert.equal(svid.expiresAt().getTime(), T0.getTime() + 30 * 86_400_000);
  assert.equal(svid.notBefore().getTime(), T0.getTime() - 86_400_000);
  const raw = svid.marshalRaw();
  assert.deepEqual(raw.certificates, chain);
  assert.deepEqual(X509Svid.parseRaw(raw.certificates, raw.privateKey).certificates, svid.certificates);
  // The Workload API resends the same key in every response: it is imported once (OpenSSL 3's
  // PKCS#8 decoder costs ~0.5 ms per import), later SVIDs share the KeyObject.
  assert.equal(X509Svid.parseRaw(raw.certificates, raw.privateKey).privateKey, svid.privateKey);
  const pem = svid.marshal();
  assert.match(pem.certificates, /^-----BEGIN CERTIFICATE-----\n[\s\S]*-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----/);
  assert.match(pem.privateKey, /^-----BEGIN PRIVATE KEY-----\n/);
  const again = X509Svid.parse(pem.certificates, pem.privateKey);
  assert.ok(again.id.equals(svid.id));
  assert.deepEqual(again.certificates, svid.certificates);
});

interface Case {
  readonly name: string;
  readonly certs: () => Promise<Uint8Array[]>;
  readonly key?: Uint8Array;
  readonly message: string;
}

const cases: Case[] = [
  { name: 'no certificates', certs: async () => [], message: 'x509svid: certificate validation failed: no certificates found' },
  {
    name: 'leaf without URI SAN',
    certs: async () => [await leaf({ uris: [], dns: ['a.example.org'] })],
    message: 'x509svid: certificate validation failed: cannot get leaf certificate SPIFFE ID: certificate contains no URI SAN',
  },
  {
    name: 'leaf with two URI SANs',
    certs: async () => [await leaf({ uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] })],
    message: 'x509svid: certificate validation failed: cannot get leaf certificate SPIFFE ID: certificate contains more than one URI SAN',
  },
  {
    name: 'leaf ID without path',
    certs: async () => [await leaf({ uris: ['spiffe://example.org'] })],
    message: 'x509svid: certificate validation failed: leaf certificate SPIFFE ID must have a non-root path',
  },
  {
    name: 'leaf with CA flag',
    certs: async () => [await leaf({ ca: true })],
    message: 'x509svid: certificate validation failed: leaf certificate must not have CA flag set to true',
  },
  {
    name: 'leaf without digitalSignature',
    certs: async () => [await leaf({ keyUsage: KU.keyEncipherment })],
    message: "x509svid: certificate validation failed: leaf certificate must have 'digitalSignature' set as key usage",
  },
  {
    name: 'leaf without keyUsage extension',
    certs: async () => [await leaf({ keyUsage: undefined as unknown as number })],
    message: "x509svid: certificate validation failed: leaf certificate must have 'digitalSignature' set as key usage",
  },
  {
    name: 'leaf with keyCertSign',
    certs: async () => [await leaf({ keyUsage: KU.digitalSignature | KU.keyCertSign })],
    message: "x509svid: certificate validation failed: leaf certificate must not have 'keyCertSign' set as key usage",
  },
  {
    name: 'leaf with cRLSign',
    certs: async () => [await leaf({ keyUsage: KU.digitalSignature | KU.cRLSign })],
    message: "x509svid: certificate validation failed: leaf certificate must not have 'cRLSign' set as key usage",
  },
  {
    name: 'intermediate without CA flag',
    certs: async () => {
      const inter = await makeCert({ subject: 'CN=i', issuer: pki.root, keys: await keyPair('i'), ca: false, keyUsage: CA_KU });
      return [await leaf({}, inter), inter.der];
    },
    message: 'x509svid: certificate validation failed: signing certificate must have CA flag set to true',
  },
  {
    name: 'intermediate without keyCertSign',
    certs: async () => {
      const inter = await makeCert({ subject: 'CN=i', issuer: pki.root, keys: await keyPair('i'), ca: true, keyUsage: KU.cRLSign });
      return [await leaf({}, inter), inter.der];
    },
    message: "x509svid: certificate validation failed: signing certificate must have 'keyCertSign' set as key usage",
  },
  {
    name: 'no private key',
    certs: async () => [pki.leaf.der],
    key: new Uint8Array(0),
    message: 'x509svid: private key validation failed: no private key found',
  },
  {
    name: 'key does not match leaf',
    certs: async () => [pki.leaf.der],
    key: otherKey,
    message: 'x509svid: private key validation failed: leaf certificate does not match private key',
  },
  {
    name: 'key is not PKCS#8',
    certs: async () => [pki.leaf.der],
    key: Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00]),
    message: 'x509svid: cannot parse DER encoded private key: invalid PKCS#8 private key',
  },
  {
    name: 'truncated certificate DER',
    certs: async () => [pki.leaf.der.subarray(0, 40)],
    message: 'x509svid: cannot parse DER encoded certificate: der: truncated value at offset 0',
  },
];

for (const c of cases) {
  test(`X509Svid.parseRaw rejects: ${c.name}`, async () => {
    const certs = concatDer(await c.certs());
    assert.throws(
      () => X509Svid.parseRaw(certs, c.key ?? leafKey),
      (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID') && e.message === c.message,
    );
  });
}

test('X509Svid.parse accepts one PEM file holding both key and certificates (go-spiffe layout)', () => {
  const both = derToPem(leafKey, 'PRIVATE KEY') + derToPem(pki.leafViaIntermediate.der, 'CERTIFICATE') + derToPem(pki.intermediate.der, 'CERTIFICATE');
  const svid = X509Svid.parse(both, both);
  assert.deepEqual(svid.certificates, [pki.leafViaIntermediate.der, pki.intermediate.der]);
});

test('X509Svid.parse rejects bad PEM input', () => {
  const certPem = derToPem(pki.leaf.der, 'CERTIFICATE');
  const keyPem = derToPem(leafKey, 'PRIVATE KEY');
  const bad: Array<[string, string, string, RegExp]> = [
    ['SEC1 key block only', certPem, derToPem(leafKey, 'EC PRIVATE KEY'), /private key validation failed: no private key found/],
    ['two keys', certPem, keyPem + keyPem, /more than one private key/],
    ['no key', certPem, '', /private key validation failed: no private key found/],
    ['only a key block for certificates', keyPem, keyPem, /certificate validation failed: no certificates found/],
    ['bad base64', '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n', keyPem, /cannot parse PEM encoded certificate: pem: invalid base64/],
    ['not PEM', 'hello', keyPem, /cannot parse PEM encoded certificate: pem: no PEM blocks found/],
  ];
  for (const [name, certs, key, re] of bad) {
    assert.throws(
      () => X509Svid.parse(certs, key),
      (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID') && re.test(e.message),
      name,
    );
  }
});

test('X509Svid.parseRaw of bytes parsed before: own certificate copies; a changed key, chain or byte is checked again', async () => {
  const chain = concatDer([pki.leafViaIntermediate.der, pki.intermediate.der]);
  const first = X509Svid.parseRaw(chain, leafKey);
  // The result of the same bytes is reused, but each SVID owns its certificates.
  const firstLeaf = first.certificates[0] as Uint8Array;
  firstLeaf[20] = (firstLeaf[20] as number) ^ 0xff;
  const again = X509Svid.parseRaw(chain, leafKey);
  assert.deepEqual(again.certificates, [pki.leafViaIntermediate.der, pki.intermediate.der]);
  assert.notEqual(again.certificates[0], first.certificates[0]);
  assert.ok(again.id.equals(first.id));
  // Same chain, another key: the key-match check runs again.
  assert.throws(
    () => X509Svid.parseRaw(chain, otherKey),
    (e: unknown) =>
      isSpiffeError(e, 'ERR_X509SVID_INVALID') && e.message === 'x509svid: private key validation failed: leaf certificate does not match private key',
  );
  // Another certificate with the same SPIFFE ID and key, but a CA flag: the leaf rules run again.
  const caLeaf = concatDer([await leaf({ ca: true, keyUsage: LEAF_KEY_USAGE | KU.keyCertSign }), pki.intermediate.der]);
  assert.throws(
    () => X509Svid.parseRaw(caLeaf, leafKey),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID') && /leaf certificate must not have CA flag set to true/.test(e.message),
  );
  // The very buffer parsed before, changed in place: looked up by content, not by identity.
  const mutable = chain.slice();
  X509Svid.parseRaw(mutable, leafKey);
  mutable[1] = (mutable[1] as number) ^ 0xff; // the outer SEQUENCE's length
  assert.throws(
    () => X509Svid.parseRaw(mutable, leafKey),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID'),
  );
});

test('X509Svid.copyOf: same ID, key and hint, certificates of its own', () => {
  const svid = X509Svid.parseRaw(concatDer([pki.leafViaIntermediate.der, pki.intermediate.der]), leafKey);
  svid.hint = 'internal';
  const copy = X509Svid.copyOf(svid);
  assert.notEqual(copy, svid);
  assert.ok(copy.id.equals(svid.id));
  assert.equal(copy.privateKey, svid.privateKey);
  assert.equal(copy.hint, 'internal');
  assert.notEqual(copy.certificates, svid.certificates);
  assert.deepEqual(copy.certificates, svid.certificates);
  (svid.certificates[0] as Uint8Array)[10] = ((svid.certificates[0] as Uint8Array)[10] as number) ^ 0xff;
  svid.certificates.pop();
  assert.deepEqual(copy.certificates, [pki.leafViaIntermediate.der, pki.intermediate.der]);
  delete svid.hint;
  assert.equal(X509Svid.copyOf(svid).hint, undefined);
});
