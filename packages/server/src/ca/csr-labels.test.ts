// What parseCsr's refusals name: the DER element whose tag is wrong (the outer request, the
// signature algorithm's OID, an attribute's type), and signature algorithm parameters other than
// an empty NULL. csr-structure.test.ts has the structure rules; these are the names in the
// messages, which a user reads to find what is wrong with a request.
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { parseCsr } from './csr.ts';
import { oid, seq, set, tlv } from './der-build.test-util.ts';
import { P256 } from './fixtures.test-util.ts';

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';

function refusedWith(der: Uint8Array, message: string): void {
  assert.throws(
    () => parseCsr(der),
    (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && e.message === `csr: ${message}`,
  );
}

/** A P-256 request signed over an info of version, a one-name subject, the key and `attributes`. */
function signedWith(attributes: Buffer, alg = seq(oid(ECDSA_SHA256))): Buffer {
  const subject = seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('workload')))));
  const info = seq(tlv(0x02, Buffer.from([0])), subject, P256.publicKey.export({ type: 'spki', format: 'der' }), attributes);
  return seq(info, alg, tlv(0x03, Buffer.from([0]), sign('sha256', info, P256.privateKey)));
}

describe('parseCsr refusals name the element', () => {
  it('an outer element that is not a SEQUENCE is named as the certification request', () => {
    refusedWith(Uint8Array.from([0x31, 0x00]), 'malformed DER: unexpected tag for certification request');
  });

  it('a signature algorithm whose first element is not an OID is named as the signature algorithm', () => {
    const info = seq(tlv(0x02, Buffer.from([0])), seq(), seq(), tlv(0xa0));
    refusedWith(seq(info, seq(tlv(0x04)), tlv(0x03, Buffer.from([0]))), 'malformed DER: unexpected tag for signature algorithm');
  });

  it('signature algorithm parameters must be an empty NULL: an empty element of another type is refused', () => {
    const info = seq(tlv(0x02, Buffer.from([0])), seq(), seq(), tlv(0xa0));
    for (const param of [tlv(0x04), tlv(0x30), tlv(0x05, Buffer.from([0]))]) {
      refusedWith(seq(info, seq(oid(ECDSA_SHA256), param), tlv(0x03, Buffer.from([0]))), 'unexpected signature algorithm parameters');
    }
  });

  it('an attribute whose type is not an OID is named as the attribute type', () => {
    refusedWith(signedWith(tlv(0xa0, seq(tlv(0x04), set()))), 'malformed DER: unexpected tag for attribute type');
  });

  it('a well-formed request with an empty NULL as parameters is accepted', () => {
    assert.equal(parseCsr(signedWith(tlv(0xa0), seq(oid(ECDSA_SHA256), tlv(0x05)))).signatureAlgorithm, ECDSA_SHA256);
  });
});
