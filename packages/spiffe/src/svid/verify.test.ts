import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrustDomain, X509Bundle, X509BundleSet, isSpiffeError, verifyX509Svid, type SpiffeErrorCode } from '../index.ts';
import {
  x509,
  CA_KU,
  EKU_CLIENT,
  EKU_SERVER,
  KU,
  LEAF_KEY_USAGE,
  T0,
  keyPair,
  makeCert,
  makePki,
  nameConstraintsDer,
  type Cert,
} from '../testdata/fixtures.ts';

const td = TrustDomain.parse('example.org');
const pki = await makePki('example.org');
const other = await makePki('other.org');
const bundle = X509Bundle.fromAuthorities(td, [pki.root.der]);
const set = new X509BundleSet([bundle, X509Bundle.fromAuthorities(TrustDomain.parse('other.org'), [other.root.der])]);
const leafKeys = pki.leafKeys;
const HOUR = 3_600_000;
const oldRoot = makeCert({ subject: 'CN=old root', keys: pki.rootKeys, ca: true, keyUsage: CA_KU, notAfter: new Date(T0.getTime() - HOUR) });

async function leaf(over: Partial<Parameters<typeof makeCert>[0]> = {}, issuer: Cert = pki.root): Promise<Uint8Array> {
  const c = await makeCert({
    subject: 'C=US, O=SPIRE',
    keys: leafKeys,
    issuer,
    ca: false,
    keyUsage: LEAF_KEY_USAGE,
    eku: [EKU_SERVER, EKU_CLIENT],
    uris: ['spiffe://example.org/workload'],
    ...over,
  });
  return c.der;
}

test('verifyX509Svid accepts a leaf signed by the root and one via an intermediate', () => {
  const r1 = verifyX509Svid([pki.leaf.der], set, { now: T0 });
  assert.equal(r1.id.toString(), 'spiffe://example.org/workload');
  assert.deepEqual(r1.verifiedChains, [[pki.leaf.der, pki.root.der]]);
  const r2 = verifyX509Svid([pki.leafViaIntermediate.der, pki.intermediate.der], bundle, { now: T0 });
  assert.deepEqual(r2.verifiedChains, [[pki.leafViaIntermediate.der, pki.intermediate.der, pki.root.der]]);
});

test('verifyX509Svid does not enforce EKU or digitalSignature (as go-spiffe Verify)', async () => {
  const noEku = await leaf({ eku: [EKU_CLIENT], keyUsage: KU.keyAgreement });
  assert.equal(verifyX509Svid([noEku], set, { now: T0 }).id.path, '/workload');
});

test('X509-SVID §3.1, §5.2: verifyX509Svid refuses a leaf whose ID is the bare trust domain (stricter than go-spiffe)', async () => {
  const rootId = await leaf({ uris: ['spiffe://example.org'] });
  assert.throws(
    () => verifyX509Svid([rootId], set, { now: T0 }),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID') && e.message === 'x509svid: leaf certificate SPIFFE ID must have a non-root path',
  );
});

interface Case {
  readonly name: string;
  readonly chain: () => Promise<Uint8Array[]>;
  readonly code: SpiffeErrorCode;
  readonly message: string | RegExp;
  readonly now?: Date;
  readonly source?: () => Promise<X509BundleSet>;
}

const cases: Case[] = [
  { name: 'empty chain', chain: async () => [], code: 'ERR_X509SVID_INVALID', message: 'x509svid: empty certificates chain' },
  {
    name: 'garbage DER',
    chain: async () => [Uint8Array.from([0x30, 0x03, 1, 2, 3])],
    code: 'ERR_X509SVID_INVALID',
    message: /^x509svid: could not parse certificate: x509: malformed/,
  },
  {
    name: 'leaf without URI SAN',
    chain: async () => [await leaf({ uris: [], dns: ['x.example.org'] })],
    code: 'ERR_X509SVID_INVALID',
    message: 'x509svid: could not get leaf SPIFFE ID: certificate contains no URI SAN',
  },
  {
    name: 'leaf with two URI SANs',
    chain: async () => [await leaf({ uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] })],
    code: 'ERR_X509SVID_INVALID',
    message: 'x509svid: could not get leaf SPIFFE ID: certificate contains more than one URI SAN',
  },
  {
    name: 'leaf with non-SPIFFE URI',
    chain: async () => [await leaf({ uris: ['https://example.org/a'] })],
    code: 'ERR_X509SVID_INVALID',
    message: 'x509svid: could not get leaf SPIFFE ID: spiffeid: scheme is missing or invalid',
  },
  {
    name: 'leaf with CA flag',
    chain: async () => [await leaf({ ca: true })],
    code: 'ERR_X509SVID_INVALID',
    message: 'x509svid: leaf certificate with CA flag set to true',
  },
  {
    name: 'leaf with keyCertSign',
    chain: async () => [await leaf({ keyUsage: KU.digitalSignature | KU.keyCertSign })],
    code: 'ERR_X509SVID_INVALID',
    message: 'x509svid: leaf certificate with KeyCertSign key usage',
  },
  {
    name: 'leaf with cRLSign',
    chain: async () => [await leaf({ keyUsage: KU.digitalSignature | KU.cRLSign })],
    code: 'ERR_X509SVID_INVALID',
    message: 'x509svid: leaf certificate with KeyCrlSign key usage',
  },
  {
    name: 'leaf of a trust domain without bundle',
    chain: async () => [await leaf({ uris: ['spiffe://nowhere.org/w'] })],
    code: 'ERR_X509SVID_UNTRUSTED',
    message: 'x509svid: could not get X509 bundle: x509bundle: no X.509 bundle for trust domain "nowhere.org"',
  },
  {
    name: 'leaf signed by another trust domain CA (cross-TD)',
    chain: async () => [await leaf({}, other.root)],
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /^x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority/,
  },
  {
    name: 'foreign-TD leaf signed by our root',
    chain: async () => [await leaf({ uris: ['spiffe://other.org/w'] })],
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /could not verify leaf certificate/,
  },
  {
    name: 'wrong issuer key (same name, forged)',
    chain: async () => {
      const forger = await makeCert({ subject: pki.root.subject, keys: await keyPair('forger'), ca: true, keyUsage: CA_KU });
      return [await leaf({}, forger)];
    },
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /signature verification failed/,
  },
  {
    name: 'issuer name mismatch',
    chain: async () => [await leaf({}, { ...pki.root, subject: 'C=US, O=SPIFFE, CN=someone else' })],
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /signed by unknown authority/,
  },
  {
    name: 'expired leaf',
    now: new Date(T0.getTime() + 31 * 24 * HOUR),
    chain: async () => [pki.leaf.der],
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /current time .* is after/,
  },
  {
    name: 'not yet valid leaf',
    now: new Date(T0.getTime() - 25 * HOUR),
    chain: async () => [pki.leaf.der],
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /is before/,
  },
  {
    name: 'expired root in the bundle (leaf still valid)',
    chain: async () => [await leaf({ notAfter: new Date(T0.getTime() + HOUR) }, await oldRoot)],
    source: async () => new X509BundleSet([X509Bundle.fromAuthorities(td, [(await oldRoot).der])]),
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /could not verify leaf certificate: x509: certificate has expired or is not yet valid: .* is after/,
  },
  {
    name: 'intermediate without CA flag',
    chain: async () => {
      const inter = await makeCert({ subject: 'CN=not a ca', issuer: pki.root, keys: await keyPair('inter2'), ca: false, keyUsage: CA_KU });
      return [await leaf({}, inter), inter.der];
    },
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /not authorized to sign other certificates$/,
  },
  {
    name: 'intermediate without basicConstraints',
    chain: async () => {
      const inter = await makeCert({ subject: 'CN=no bc', issuer: pki.root, keys: await keyPair('inter2'), keyUsage: CA_KU });
      return [await leaf({}, inter), inter.der];
    },
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /not authorized to sign other certificates$/,
  },
  {
    name: 'intermediate without keyCertSign',
    chain: async () => {
      const inter = await makeCert({ subject: 'CN=no certsign', issuer: pki.root, keys: await keyPair('inter2'), ca: true, keyUsage: KU.digitalSignature });
      return [await leaf({}, inter), inter.der];
    },
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /no keyCertSign key usage/,
  },
  {
    name: 'expired intermediate',
    chain: async () => {
      const inter = await makeCert({
        subject: 'CN=expired inter',
        issuer: pki.root,
        keys: await keyPair('inter2'),
        ca: true,
        keyUsage: CA_KU,
        notAfter: new Date(T0.getTime() - 1000),
      });
      return [await leaf({}, inter), inter.der];
    },
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /is after/,
  },
  {
    name: 'pathLen 0 root with an intermediate',
    chain: async () => {
      const root0 = await makeCert({ subject: 'CN=root pathlen0', keys: pki.rootKeys, ca: true, pathLen: 0, keyUsage: CA_KU });
      const inter = await makeCert({ subject: 'CN=inter under pl0', issuer: root0, keys: await keyPair('inter2'), ca: true, keyUsage: CA_KU });
      return [await leaf({}, inter), inter.der, root0.der];
    },
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /too many intermediates/,
  },
  {
    name: 'unknown critical extension on leaf',
    chain: async () => [await leaf({ extraExtensions: [new x509.Extension('1.2.3.4.5', true, Uint8Array.from([0x05, 0x00]))] })],
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /unhandled critical extension 1\.2\.3\.4\.5/,
  },
  {
    name: 'name constraints excluding the leaf',
    chain: async () => {
      const inter = await makeCert({
        subject: 'CN=nc inter',
        issuer: pki.root,
        keys: await keyPair('inter2'),
        ca: true,
        keyUsage: CA_KU,
        nameConstraints: nameConstraintsDer([['uri', 'other.org']]),
      });
      return [await leaf({}, inter), inter.der];
    },
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /not permitted by any constraint/,
  },
  {
    name: 'intermediates not sent and not in bundle',
    chain: async () => [pki.leafViaIntermediate.der],
    code: 'ERR_X509SVID_UNTRUSTED',
    message: /signed by unknown authority/,
  },
];

for (const c of cases) {
  test(`verifyX509Svid rejects: ${c.name}`, async () => {
    const chain = await c.chain();
    const source = c.source === undefined ? set : await c.source();
    assert.throws(
      () => verifyX509Svid(chain, source, { now: c.now ?? T0 }),
      (e: unknown) => {
        assert.ok(isSpiffeError(e), `not a SpiffeError: ${String(e)}`);
        assert.equal(e.code, c.code, e.message);
        if (typeof c.message === 'string') assert.equal(e.message, c.message);
        else assert.match(e.message, c.message);
        return true;
      },
    );
  });
}

test('verifyX509Svid accepts a chain within pathLen and URI name constraints', async () => {
  const root1 = await makeCert({
    subject: 'CN=root pathlen1',
    keys: pki.rootKeys,
    ca: true,
    pathLen: 1,
    keyUsage: CA_KU,
    nameConstraints: nameConstraintsDer([['uri', 'example.org']]),
  });
  const inter = await makeCert({ subject: 'CN=inter under pl1', issuer: root1, keys: await keyPair('inter2'), ca: true, keyUsage: CA_KU });
  const l = await leaf({}, inter);
  const r = verifyX509Svid([l, inter.der], X509Bundle.fromAuthorities(td, [root1.der]), { now: T0 });
  assert.equal(r.verifiedChains[0]?.length, 3);
});

test('verifyX509Svid uses only the leaf trust domain bundle', () => {
  // our root is present in the set under other.org only: must not be used for example.org
  const wrongSet = new X509BundleSet([
    X509Bundle.fromAuthorities(TrustDomain.parse('other.org'), [pki.root.der]),
    X509Bundle.fromAuthorities(td, [other.root.der]),
  ]);
  assert.throws(
    () => verifyX509Svid([pki.leaf.der], wrongSet, { now: T0 }),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_UNTRUSTED'),
  );
});

test('verifyX509Svid validity bounds are inclusive', async () => {
  const nb = new Date(T0.getTime() - HOUR);
  const na = new Date(T0.getTime() + HOUR);
  const l = await leaf({ notBefore: nb, notAfter: na });
  verifyX509Svid([l], set, { now: nb });
  verifyX509Svid([l], set, { now: na });
  assert.throws(
    () => verifyX509Svid([l], set, { now: new Date(na.getTime() + 1000) }),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_UNTRUSTED'),
  );
});

test('verifyX509Svid requires a bundle source', () => {
  assert.throws(
    () => verifyX509Svid([pki.leaf.der], undefined as unknown as X509BundleSet),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID') && e.message === 'x509svid: bundleSource is required',
  );
});

test('verifyX509Svid re-reads caller buffers: mutating a verified chain in place invalidates it', () => {
  const mine = Uint8Array.from(pki.leaf.der);
  const r = verifyX509Svid([mine], set, { now: T0 });
  const idx = mine.length - 10; // inside the signature
  mine[idx] = (mine[idx] as number) ^ 0x01;
  assert.notDeepEqual(r.verifiedChains[0]?.[0], mine); // the result holds its own copy
  assert.throws(
    () => verifyX509Svid([mine], set, { now: T0 }),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_UNTRUSTED'),
  );
});

test('verifyX509Svid rejects an invalid verification time instead of skipping validity checks', () => {
  assert.throws(
    () => verifyX509Svid([pki.leaf.der], set, { now: new Date(NaN) }),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_INVALID') && e.message === 'x509svid: invalid verification time',
  );
});
