import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { parseCsr } from './csr.ts';
import { makeCsr, opensslCsr, P256, P384, RSA2048, type Pair } from './fixtures.test-util.ts';

const invalid = (fragment: string) => (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && e.message.startsWith('csr: ') && e.message.includes(fragment);

describe('parseCsr', () => {
  const good: Array<{ name: string; pair: Pair; alg: string }> = [
    { name: 'P-256', pair: P256, alg: '1.2.840.10045.4.3.2' },
    { name: 'P-384', pair: P384, alg: '1.2.840.10045.4.3.3' },
    { name: 'RSA-2048', pair: RSA2048, alg: '1.2.840.113549.1.1.11' },
  ];
  for (const c of good) {
    it(`accepts a ${c.name} request and returns its key and SANs`, async () => {
      const der = await makeCsr(c.pair, { dnsNames: ['a.example', 'b.example'], uris: ['spiffe://example.org/evil'] });
      const csr = parseCsr(der);
      assert.ok(csr.publicKey.equals(c.pair.publicKey));
      assert.deepEqual(csr.spki, c.pair.publicKey.export({ type: 'spki', format: 'der' }));
      assert.deepEqual(csr.dnsNames, ['a.example', 'b.example']);
      assert.deepEqual(csr.uris, ['spiffe://example.org/evil']);
      assert.equal(csr.signatureAlgorithm, c.alg);
    });
  }

  it('accepts a request made by the openssl binary (no extensions)', () => {
    const pem = opensslCsr(P256.privateKey);
    const csr = parseCsr(new Uint8Array(pem));
    assert.ok(csr.publicKey.equals(P256.publicKey));
    assert.deepEqual(csr.dnsNames, []);
  });

  it('accepts an Ed25519 request made by openssl', () => {
    const ed = generateKeyPairSync('ed25519');
    const der = opensslCsr(ed.privateKey);
    assert.ok(parseCsr(new Uint8Array(der)).publicKey.equals(ed.publicKey));
  });

  it('rejects a request whose signature does not match its key', async () => {
    const der = Buffer.from(await makeCsr(P256));
    der[der.length - 5] = (der[der.length - 5] as number) ^ 0x01; // flip a bit inside the ECDSA signature
    assert.throws(() => parseCsr(der), invalid('signature'));
  });

  it('rejects a request whose info was altered after signing', async () => {
    const der = Buffer.from(await makeCsr(P256, { dnsNames: ['aaaa.example'] }));
    const i = der.indexOf('aaaa.example');
    der[i] = 'b'.charCodeAt(0);
    assert.throws(() => parseCsr(der), invalid('signature does not verify'));
  });

  it('rejects a request signed by another key (key swapped in)', async () => {
    const a = Buffer.from(await makeCsr(P256, { subject: 'CN=x' }));
    const spkiA = P256.publicKey.export({ type: 'spki', format: 'der' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const i = a.indexOf(spkiA);
    assert.ok(i > 0);
    other.copy(a, i);
    assert.throws(() => parseCsr(a), invalid('signature does not verify'));
  });

  it('rejects an RSA key below 2048 bits', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const der = opensslCsr(small.privateKey);
    assert.throws(() => parseCsr(new Uint8Array(der)), invalid('rsa key too small'));
  });

  const malformed: Array<{ name: string; der: Uint8Array; msg: string }> = [
    { name: 'empty', der: new Uint8Array(0), msg: 'empty request' },
    { name: 'not a sequence', der: Uint8Array.from([0x04, 0x01, 0x00]), msg: 'malformed DER' },
    { name: 'truncated', der: Uint8Array.from([0x30, 0x82, 0x01]), msg: 'malformed DER' },
    { name: 'indefinite length', der: Uint8Array.from([0x30, 0x80, 0x00, 0x00]), msg: 'indefinite length' },
    { name: 'empty sequence', der: Uint8Array.from([0x30, 0x00]), msg: 'expected info' },
    { name: 'a certificate-like shape', der: Uint8Array.from([0x30, 0x06, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00]), msg: 'unexpected element types' },
    { name: 'oversized', der: new Uint8Array(70_000), msg: 'larger than' },
  ];
  for (const c of malformed) {
    it(`rejects malformed input: ${c.name}`, () => {
      assert.throws(() => parseCsr(c.der), invalid(c.msg));
    });
  }

  it('rejects trailing bytes', async () => {
    const der = Buffer.concat([await makeCsr(P256), Buffer.from([0])]);
    assert.throws(() => parseCsr(der), invalid('trailing data'));
  });
});
