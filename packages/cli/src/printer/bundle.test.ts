import 'reflect-metadata';
import assert from 'node:assert/strict';
import { generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import * as x509 from '@peculiar/x509';
import { BundleSchema, type Bundle } from '@ztwim/proto';
import { formatBundle, formatBundleCount, formatBundlePem, formatBundleSpiffe, parseBundleFormat, pemEncode } from './bundle.ts';

let certDer: Uint8Array;
let jwtDer: Uint8Array;

before(async () => {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    { serialNumber: '01', name: 'CN=test', notBefore: new Date(0), notAfter: new Date(4102444800000), keys: keys as never, signingAlgorithm: alg },
    webcrypto as never,
  );
  certDer = new Uint8Array(cert.rawData);
  jwtDer = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }));
});

function bundle(extra: { sequenceNumber?: bigint; refreshHint?: bigint } = {}): Bundle {
  return create(BundleSchema, {
    trustDomain: 'example.org',
    x509Authorities: [{ asn1: certDer }],
    jwtAuthorities: [{ publicKey: jwtDer, keyId: 'KID1', expiresAt: 5n }],
    ...extra,
  });
}

describe('pemEncode', () => {
  it('wraps base64 at 64 columns like Go pem.Encode', () => {
    const pem = pemEncode('CERTIFICATE', new Uint8Array(100).fill(7));
    const lines = pem.split('\n');
    assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
    // 100 bytes ⇒ 136 base64 chars ⇒ 64 + 64 + 8
    assert.deepEqual(
      lines.slice(1, 4).map((l) => l.length),
      [64, 64, 8],
    );
    assert.equal(lines[4], '-----END CERTIFICATE-----');
    assert.equal(lines[5], '');
  });
});

describe('bundle printers', () => {
  it('pem: one block per authority, parseable', () => {
    const pem = formatBundlePem(bundle());
    assert.equal(new X509Certificate(pem).raw.equals(Buffer.from(certDer)), true);
  });

  it('spiffe: JWKS with go-jose key order, 4-space indent, sequence and refresh hint', () => {
    const text = formatBundleSpiffe(bundle({ sequenceNumber: 3n, refreshHint: 60n }));
    assert.ok(text.endsWith('}\n'));
    assert.match(
      text,
      /^\{\n {4}"keys": \[\n {8}\{\n {12}"use": "x509-svid",\n {12}"kty": "EC",\n {12}"crv": "P-256",\n {12}"x": "[^"]+",\n {12}"y": "[^"]+",\n {12}"x5c": \[\n {16}"[^"]+"\n {12}\]\n {8}\},\n {8}\{\n {12}"use": "jwt-svid",\n {12}"kty": "EC",\n {12}"kid": "KID1",\n {12}"crv": "P-256",/,
    );
    const doc = JSON.parse(text) as { keys: { x5c?: string[] }[]; spiffe_sequence: number; spiffe_refresh_hint: number };
    assert.equal(doc.keys[0]?.x5c?.[0], Buffer.from(certDer).toString('base64'));
    assert.equal(doc.spiffe_sequence, 3);
    assert.equal(doc.spiffe_refresh_hint, 60);
    assert.deepEqual(Object.keys(doc), ['keys', 'spiffe_sequence', 'spiffe_refresh_hint']);
  });

  it('spiffe: zero sequence/refresh hint omitted, no keys ⇒ null', () => {
    assert.equal(formatBundleSpiffe(create(BundleSchema, { trustDomain: 'x.org' })), '{\n    "keys": null\n}\n');
  });

  it('list header', () => {
    const b = create(BundleSchema, { trustDomain: 'fed.org' });
    assert.equal(formatBundle(b, 'pem', true), '****************************************\n* fed.org\n****************************************\n');
  });

  const formats: [string, string][] = [
    ['', 'pem'],
    ['pem', 'pem'],
    ['SPIFFE', 'spiffe'],
  ];
  for (const [input, want] of formats) it(`format "${input}" ⇒ ${want}`, () => assert.equal(parseBundleFormat(input), want));
  it('unknown format', () => assert.throws(() => parseBundleFormat('DER'), { message: 'invalid format: "der"' }));

  it('count', () => {
    assert.equal(formatBundleCount(1), '1 bundle\n');
    assert.equal(formatBundleCount(2), '2 bundles\n');
  });
});
