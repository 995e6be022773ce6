import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { internal } from '@ztwim/core';
import { bytesOf, children, DerError, expect, readOid, readTlv, valueOf, type Tlv } from './der-reader.ts';

/** The parts of an X.509 certificate the CA needs to chain to it. */
export interface CertInfo {
  readonly der: Uint8Array;
  readonly subject: Buffer;
  readonly issuer: Buffer;
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Subject key identifier extension value, or the SHA-1 of the key when the extension is absent. */
  readonly subjectKeyId: Buffer;
}

const OID_SKI = '2.5.29.14';

function readTime(buf: Uint8Array, t: Tlv): Date {
  const s = valueOf(buf, t).toString('latin1');
  let m: RegExpMatchArray | null;
  if (t.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    return new Date(Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  if (t.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  throw new DerError('bad certificate time');
}

/** SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1), as Go and SPIRE compute it. */
export function keyIdOf(spki: Uint8Array): Buffer {
  const outer = expect(spki, 0, spki.length, 0x30, 'subject public key info');
  const [, bits] = children(spki, outer);
  if (!bits || bits.tag !== 0x03) throw new DerError('subject public key info without key bits');
  return createHash('sha1').update(valueOf(spki, bits).subarray(1)).digest();
}

export function parseCertInfo(der: Uint8Array): CertInfo {
  try {
    const cert = expect(der, 0, der.length, 0x30, 'certificate');
    const [tbsT] = children(der, cert);
    if (!tbsT || tbsT.tag !== 0x30) throw new DerError('missing tbsCertificate');
    const parts = children(der, tbsT);
    const off = parts[0]?.tag === 0xa0 ? 1 : 0;
    const issuerT = parts[off + 2];
    const validityT = parts[off + 3];
    const subjectT = parts[off + 4];
    const spkiT = parts[off + 5];
    if (!issuerT || !validityT || !subjectT || !spkiT) throw new DerError('truncated tbsCertificate');
    const [nb, na] = children(der, validityT);
    if (!nb || !na) throw new DerError('bad validity');
    const spki = Buffer.from(bytesOf(der, spkiT));
    let ski: Buffer | undefined;
    const extsT = parts.find((p) => p.tag === 0xa3);
    if (extsT) {
      const list = readTlv(der, extsT.valueStart, extsT.end);
      for (const ext of children(der, list)) {
        const [idT, ...rest] = children(der, ext);
        const valT = rest[rest.length - 1];
        if (idT && valT && readOid(der, idT) === OID_SKI) ski = valueOf(der, readTlv(der, valT.valueStart, valT.end));
      }
    }
    return {
      der,
      subject: Buffer.from(bytesOf(der, subjectT)),
      issuer: Buffer.from(bytesOf(der, issuerT)),
      spki,
      publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }),
      notBefore: readTime(der, nb),
      notAfter: readTime(der, na),
      subjectKeyId: ski ? Buffer.from(ski) : keyIdOf(spki),
    };
  } catch (cause) {
    throw internal(`ca: cannot parse certificate: ${(cause as Error).message}`, { cause });
  }
}
