import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto, KeyObject, createHash, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { answerX509PopChallenge, isZtwimError, marshalX509PopPayload, parseX509PopChallenge, systemClock } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { X509PopAttestor } from './x509pop.ts';

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;

async function makeCa(name: string) {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    keys,
    signingAlgorithm: EC,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { keys, cert };
}

async function makeLeaf(ca: Awaited<ReturnType<typeof makeCa>>, opts: { rsa?: boolean; ku?: number; notAfter?: Date; san?: string } = {}) {
  const alg = opts.rsa ? RSA : EC;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const exts: x509.Extension[] = [new x509.KeyUsagesExtension(opts.ku ?? x509.KeyUsageFlags.digitalSignature, true)];
  if (opts.san) exts.push(new x509.SubjectAlternativeNameExtension([{ type: 'url', value: opts.san }]));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0abc',
    subject: 'CN=node-1',
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 3600_000),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: EC,
    extensions: exts,
  });
  return { cert, key: KeyObject.from(keys.privateKey) };
}

const td = TrustDomain.parse('example.org');
const dir = mkdtempSync(join(tmpdir(), 'x509pop-'));

async function setup() {
  const ca = await makeCa('agents-ca');
  const caPath = join(dir, `ca-${randomBytes(4).toString('hex')}.pem`);
  writeFileSync(caPath, ca.cert.toString('pem'));
  const attestor = new X509PopAttestor({ trustDomain: td, mode: 'external_pki', caBundlePaths: [caPath], clock: systemClock, random: (n) => randomBytes(n) });
  return { ca, attestor };
}

test('x509pop attests an EC agent and names it by the leaf fingerprint', async () => {
  const { ca, attestor } = await setup();
  const leaf = await makeLeaf(ca, { san: 'x509pop://example.org/datacenter/eu-1' });
  const der = new Uint8Array(leaf.cert.rawData);
  const r = await attestor.attest(marshalX509PopPayload({ certificates: [der] }), async (c) =>
    answerX509PopChallenge(parseX509PopChallenge(c), leaf.key, randomBytes(32)),
  );
  const fp = createHash('sha1').update(der).digest('hex');
  assert.equal(r.agentId.toString(), `spiffe://example.org/spire/agent/x509pop/${fp}`);
  assert.equal(r.canReattest, true);
  const caFp = createHash('sha1').update(new Uint8Array(ca.cert.rawData)).digest('hex');
  assert.deepEqual(r.selectors.map((s) => s.value).sort(), ['ca:fingerprint:' + caFp, 'san:datacenter:eu-1', 'serialnumber:0abc', 'subject:cn:node-1'].sort());
});

test('x509pop works with RSA keys (PSS challenge)', async () => {
  const { ca, attestor } = await setup();
  const leaf = await makeLeaf(ca, { rsa: true });
  const r = await attestor.attest(marshalX509PopPayload({ certificates: [new Uint8Array(leaf.cert.rawData)] }), async (c) => {
    const ch = parseX509PopChallenge(c);
    assert.equal(ch.kind, 'rsa');
    return answerX509PopChallenge(ch, leaf.key, randomBytes(32));
  });
  assert.match(r.agentId.path, /^\/spire\/agent\/x509pop\/[0-9a-f]{40}$/);
});

test('x509pop refuses untrusted, expired, wrong-key and malformed evidence', async () => {
  const { ca, attestor } = await setup();
  const other = await makeCa('other-ca');
  const good = await makeLeaf(ca);
  const foreign = await makeLeaf(other);
  const expired = await makeLeaf(ca, { notAfter: new Date(Date.now() - 1000) });
  const noDs = await makeLeaf(ca, { ku: x509.KeyUsageFlags.keyEncipherment });
  const wrongKey = await makeLeaf(ca);
  const answer = (key: KeyObject) => async (c: Uint8Array) => answerX509PopChallenge(parseX509PopChallenge(c), key, randomBytes(32));
  const cases: Array<[string, Uint8Array, (c: Uint8Array) => Promise<Uint8Array>, RegExp]> = [
    ['foreign CA', marshalX509PopPayload({ certificates: [new Uint8Array(foreign.cert.rawData)] }), answer(foreign.key), /unknown authority/],
    ['expired', marshalX509PopPayload({ certificates: [new Uint8Array(expired.cert.rawData)] }), answer(expired.key), /expired/],
    ['no digitalSignature', marshalX509PopPayload({ certificates: [new Uint8Array(noDs.cert.rawData)] }), answer(noDs.key), /digitalSignature/],
    ['wrong key', marshalX509PopPayload({ certificates: [new Uint8Array(good.cert.rawData)] }), answer(wrongKey.key), /verification failed/],
    ['garbage payload', Buffer.from('not json'), answer(good.key), /not JSON/],
    ['garbage cert', Buffer.from(JSON.stringify({ certificates: ['AAAA'] })), answer(good.key), /unable to parse/],
    [
      'garbage answer',
      marshalX509PopPayload({ certificates: [new Uint8Array(good.cert.rawData)] }),
      async () => Buffer.from('{"ecdsa_signature":{"nonce":"AA=="}}'),
      /32 bytes/,
    ],
  ];
  for (const [name, payload, ch, re] of cases) {
    await assert.rejects(attestor.attest(payload, ch), (e: unknown) => isZtwimError(e) && re.test(e.message), name);
  }
});

/** A CA certificate issued by `issuer` (an intermediate); `isCa: false` makes it a plain end-entity certificate. */
async function makeIntermediate(
  issuer: Awaited<ReturnType<typeof makeCa>>,
  name: string,
  opts: { isCa?: boolean; basicConstraints?: boolean; ku?: number; notAfter?: Date } = {},
): Promise<Awaited<ReturnType<typeof makeCa>>> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const exts: x509.Extension[] = [new x509.KeyUsagesExtension(opts.ku ?? x509.KeyUsageFlags.keyCertSign, true)];
  if (opts.basicConstraints !== false) exts.push(new x509.BasicConstraintsExtension(opts.isCa ?? true, undefined, true));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: `CN=${name}`,
    issuer: issuer.cert.subject,
    notBefore: new Date(Date.now() - 120_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 3600_000),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: EC,
    extensions: exts,
  });
  return { keys, cert };
}

test('x509pop chains through intermediates: only CA intermediates, valid now, that really signed the leaf', async () => {
  const { ca, attestor } = await setup();
  const der = (c: { cert: x509.X509Certificate }): Uint8Array => new Uint8Array(c.cert.rawData);
  const fp = (c: { cert: x509.X509Certificate }): string => createHash('sha1').update(der(c)).digest('hex');
  const answer = (key: KeyObject) => async (c: Uint8Array) => answerX509PopChallenge(parseX509PopChallenge(c), key, randomBytes(32));

  // A good chain: root (trusted) → intermediate → leaf; both CAs become selectors.
  const inter = await makeIntermediate(ca, 'agents-intermediate');
  const leaf = await makeLeaf(inter);
  const r = await attestor.attest(marshalX509PopPayload({ certificates: [der(leaf), der(inter)] }), answer(leaf.key));
  assert.deepEqual(
    r.selectors.filter((s) => s.value.startsWith('ca:')).map((s) => s.value),
    [`ca:fingerprint:${fp(inter)}`, `ca:fingerprint:${fp(ca)}`],
  );

  const other = await makeCa('other-ca');
  const otherInter = await makeIntermediate(other, 'agents-intermediate');
  const nonCa = await makeIntermediate(ca, 'not-a-ca', { isCa: false });
  const noBc = await makeIntermediate(ca, 'no-basic-constraints', { basicConstraints: false });
  const expiredInter = await makeIntermediate(ca, 'expired-intermediate', { notAfter: new Date(Date.now() - 60_000) });
  const underNonCa = await makeLeaf(nonCa);
  const underNoBc = await makeLeaf(noBc);
  const underExpired = await makeLeaf(expiredInter);
  // Same issuer name as the trusted intermediate, signed by another CA's intermediate.
  const impostor = await makeLeaf(otherInter);
  const noDsLeaf = await makeLeaf(inter, { ku: x509.KeyUsageFlags.keyEncipherment });
  // An intermediate whose key usage lists no keyCertSign. Stricter than SPIRE here: Go's
  // crypto/x509 ignores a CA's key usage ("KeyUsage status flags are ignored"), OpenSSL's issuer
  // check (X509Certificate.checkIssued) does not.
  const kuless = await makeIntermediate(ca, 'ku-digital-signature-only', { ku: x509.KeyUsageFlags.digitalSignature });
  const underKuless = await makeLeaf(kuless);
  const cases: Array<[string, Uint8Array[], KeyObject, RegExp]> = [
    ['non-CA intermediate', [der(underNonCa), der(nonCa)], underNonCa.key, /unknown authority/],
    ['intermediate without basic constraints', [der(underNoBc), der(noBc)], underNoBc.key, /unknown authority/],
    ['expired intermediate', [der(underExpired), der(expiredInter)], underExpired.key, /expired/],
    ['leaf signed by another CA, trusted intermediate sent along', [der(impostor), der(inter)], impostor.key, /unknown authority/],
    ['leaf and intermediate of another CA', [der(impostor), der(otherInter)], impostor.key, /unknown authority/],
    ['intermediate missing', [der(leaf)], leaf.key, /unknown authority/],
    ['intermediate without keyCertSign', [der(underKuless), der(kuless)], underKuless.key, /unknown authority/],
    ['leaf without digitalSignature under a good intermediate', [der(noDsLeaf), der(inter)], noDsLeaf.key, /digitalSignature/],
  ];
  for (const [name, certificates, key, re] of cases) {
    let challenged = false;
    const ch = async (c: Uint8Array): Promise<Uint8Array> => {
      challenged = true;
      return answer(key)(c);
    };
    await assert.rejects(
      attestor.attest(marshalX509PopPayload({ certificates }), ch),
      (e: unknown) => isZtwimError(e) && e.code === 'ERR_PERMISSION_DENIED' && re.test(e.message),
      name,
    );
    assert.equal(challenged, false, `${name}: refused before any challenge`);
  }
});
