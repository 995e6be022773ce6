// x509pop selectors for a leaf whose subject has a common name attribute with an empty value.
// See x509pop-rules.test.ts for the other selector rules.
import 'reflect-metadata';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto, KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { answerX509PopChallenge, marshalX509PopPayload, parseX509PopChallenge, systemClock } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { X509PopAttestor } from './x509pop.ts';

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

it('an empty common name gives no subject:cn selector', async () => {
  const caKeys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 3600_000);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=agents-ca',
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: EC,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const caPath = join(mkdtempSync(join(tmpdir(), 'x509pop-edge-')), 'ca.pem');
  writeFileSync(caPath, ca.toString('pem'));
  const attestor = new X509PopAttestor({
    trustDomain: TrustDomain.parse('example.org'),
    mode: 'external_pki',
    caBundlePaths: [caPath],
    clock: systemClock,
    random: (n) => randomBytes(n),
  });
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '0abc',
    subject: new x509.Name([{ '2.5.4.3': [{ utf8String: '' }] }, { '2.5.4.10': [{ utf8String: 'acme' }] }]),
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: EC,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  assert.equal(new X509Certificate(new Uint8Array(leaf.rawData)).subject, 'CN=\nO=acme');
  const key = KeyObject.from(keys.privateKey);
  const r = await attestor.attest(marshalX509PopPayload({ certificates: [new Uint8Array(leaf.rawData)] }), async (c) =>
    answerX509PopChallenge(parseX509PopChallenge(c), key, randomBytes(32)),
  );
  const values = r.selectors.map((s) => s.value);
  assert.ok(!values.some((v) => v.startsWith('subject:cn:')), values.join(' '));
  assert.ok(values.includes('serialnumber:0abc'), values.join(' '));
});
