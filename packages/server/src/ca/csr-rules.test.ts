// PKCS#10 rules of parseCsr that csr-structure.test.ts leaves open (found by mutation testing,
// docs/mutation-testing.md): each request here breaks exactly one rule, or sits on the edge of one,
// and the error must name that rule (RFC 2986; the CA takes only the key of a request whose
// self-signature verifies).
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { parseCsr } from './csr.ts';
import { oid, seq, set, tlv } from './der-build.test-util.ts';
import { P256 } from './fixtures.test-util.ts';

const ECDSA_SHA256 = oid('1.2.840.10045.4.3.2');
const EXTENSION_REQUEST = oid('1.2.840.113549.1.9.14');
const SAN = oid('2.5.29.17');
const SUBJECT = seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('w')))));
const SPKI = P256.publicKey.export({ type: 'spki', format: 'der' });

/** A P-256 request with these attributes, self-signed unless `sigBits` replaces its signature. */
function request(attributes: Buffer, sigBits?: Buffer, spki: Buffer = SPKI): Buffer {
  const info = seq(tlv(0x02, Buffer.from([0])), SUBJECT, spki, attributes);
  return seq(info, seq(ECDSA_SHA256), sigBits ?? tlv(0x03, Buffer.from([0]), sign('sha256', info, P256.privateKey)));
}
const extensionRequest = (...extensions: Buffer[]): Buffer => tlv(0xa0, seq(EXTENSION_REQUEST, set(seq(...extensions))));

function refused(der: Uint8Array, message: string): unknown {
  let caught: unknown;
  assert.throws(
    () => parseCsr(der),
    (e: unknown) => {
      assert.ok(isZtwimError(e, 'ERR_INVALID_ARGUMENT'), String(e));
      assert.equal(e.message, `csr: ${message}`);
      caught = e;
      return true;
    },
  );
  return caught;
}

describe('parseCsr: signature value', () => {
  it('a one-byte signature is a well-formed bit string that does not verify', () => {
    refused(request(tlv(0xa0), tlv(0x03, Buffer.from([0, 0x30]))), 'signature does not verify with the request public key');
    refused(request(tlv(0xa0), tlv(0x03, Buffer.from([0]))), 'malformed signature bit string');
  });
});

describe('parseCsr: public key', () => {
  it('a key that does not load is refused with the loader error as its cause', () => {
    const badPoint = seq(seq(oid('1.2.840.10045.2.1')), tlv(0x03, Buffer.from([0, 4])));
    const e = refused(request(tlv(0xa0), undefined, badPoint), 'invalid subject public key');
    assert.ok((e as Error).cause instanceof Error, 'the cause is kept');
  });

  it('an error about the structure carries no cause', () => {
    const e = refused(request(tlv(0xa0), tlv(0x03, Buffer.from([1, 0x30]))), 'malformed signature bit string');
    assert.equal((e as Error).cause, undefined);
    assert.ok(!Object.hasOwn(e as Error, 'cause'));
  });
});

describe('parseCsr: extensions of the extensionRequest', () => {
  it('an extension is an ID then a value: an extension holding only an octet string is malformed', () => {
    refused(request(extensionRequest(seq(tlv(0x04, seq())))), 'malformed extension');
    refused(request(extensionRequest(seq(SAN))), 'malformed extension');
  });

  it('a critical SAN extension (ID, BOOLEAN, value) is read like a non-critical one', () => {
    const san = seq(SAN, tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq(tlv(0x82, Buffer.from('a.example')), tlv(0x86, Buffer.from('spiffe://example.org/w')))));
    const csr = parseCsr(request(extensionRequest(san)));
    assert.deepEqual([csr.dnsNames, csr.uris], [['a.example'], ['spiffe://example.org/w']]);
  });

  it('names are read as bytes (latin1), one character per byte', () => {
    const csr = parseCsr(request(extensionRequest(seq(SAN, tlv(0x04, seq(tlv(0x82, Buffer.from([0x61, 0xe9]))))))));
    assert.deepEqual(csr.dnsNames, ['a\u00e9']);
  });
});
