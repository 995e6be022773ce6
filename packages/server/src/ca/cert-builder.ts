import { sign, type KeyObject } from 'node:crypto';
import { invalidArgument } from '@ztwim/core';
import { bitString, explicit, implicitPrimitive, integer, NULL, octetString, oid, printableString, seq, set, time, TRUE, utf8String } from './der-writer.ts';

/** Subject fields of a CA certificate (SPIRE's `ca_subject`). */
export interface CaSubject {
  readonly commonName?: string;
  readonly country?: readonly string[];
  readonly organization?: readonly string[];
}

const OID = {
  country: '2.5.4.6',
  organization: '2.5.4.10',
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function attr(type: string, value: string, forcePrintable = false): Buffer {
  const v = forcePrintable || PRINTABLE.test(value) ? printableString(value) : utf8String(value);
  return set(seq(oid(type), v));
}

/** A Name with one attribute per RDN, in Go's order: C, O, CN, serialNumber. */
export function encodeName(fields: { country?: readonly string[]; organization?: readonly string[]; commonName?: string; serialNumber?: string }): Buffer {
  const rdns: Buffer[] = [];
  for (const c of fields.country ?? []) rdns.push(attr(OID.country, c, true));
  for (const o of fields.organization ?? []) rdns.push(attr(OID.organization, o));
  if (fields.commonName) rdns.push(attr(OID.commonName, fields.commonName));
  if (fields.serialNumber) rdns.push(attr(OID.serialNumber, fields.serialNumber, true));
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? seq(oid(id), TRUE, octetString(value)) : seq(oid(id), octetString(value));
}

/** KeyUsage digitalSignature|keyEncipherment|keyAgreement, critical. */
export const EXT_KU_LEAF = extension(OID.keyUsage, true, bitString(Buffer.from([0xa8]), 3));
/** KeyUsage keyCertSign|cRLSign, critical. */
export const EXT_KU_CA = extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1));
export const EXT_EKU_SERVER_CLIENT = extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth)));
export const EXT_BC_LEAF = extension(OID.basicConstraints, true, seq());
export const EXT_BC_CA = extension(OID.basicConstraints, true, seq(TRUE));
export const extSubjectKeyId = (keyId: Uint8Array): Buffer => extension(OID.subjectKeyId, false, octetString(keyId));
export const extAuthorityKeyId = (keyId: Uint8Array): Buffer =>
  extension(OID.authorityKeyId, false, seq(Buffer.concat([Buffer.from([0x80, keyId.length]), keyId])));

/** subjectAltName with URI and DNS names (critical only when the subject is empty). */
export function extSubjectAltName(uris: readonly string[], dnsNames: readonly string[], critical = false): Buffer {
  const names = [...uris.map((u) => implicitPrimitive(6, Buffer.from(u, 'latin1'))), ...dnsNames.map((d) => implicitPrimitive(2, Buffer.from(d, 'latin1')))];
  return extension(OID.subjectAltName, critical, seq(...names));
}

/** How a key signs certificates: digest name for crypto.sign and the AlgorithmIdentifier DER. */
export interface SignatureScheme {
  readonly hash: string;
  readonly algorithmId: Buffer;
}

export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  if (key.asymmetricKeyType === 'rsa') return { hash: 'sha256', algorithmId: seq(oid('1.2.840.113549.1.1.11'), NULL) };
  if (key.asymmetricKeyType === 'ec') {
    const crv = key.asymmetricKeyDetails?.namedCurve;
    if (crv === 'prime256v1') return { hash: 'sha256', algorithmId: seq(oid('1.2.840.10045.4.3.2')) };
    if (crv === 'secp384r1') return { hash: 'sha384', algorithmId: seq(oid('1.2.840.10045.4.3.3')) };
  }
  throw invalidArgument(`ca: unsupported signing key ${key.asymmetricKeyType ?? 'unknown'}`);
}

export interface TbsFields {
  readonly serial: bigint;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Uint8Array;
  readonly extensions: readonly Uint8Array[];
}

const V3 = explicit(0, integer(2n));

/** Encodes tbsCertificate, signs it, and returns the DER certificate. */
export function signCertificate(fields: TbsFields, scheme: SignatureScheme, signer: KeyObject): Buffer {
  const tbs = seq(
    V3,
    integer(fields.serial),
    scheme.algorithmId,
    fields.issuer,
    seq(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.spki,
    explicit(3, seq(...fields.extensions)),
  );
  const signature = sign(scheme.hash, tbs, signer);
  return seq(tbs, scheme.algorithmId, bitString(signature));
}

/** A random serial number in [1, 2^128] (as SPIRE draws it): 16 random bytes plus one. */
export function randomSerial(random: (n: number) => Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(random(16)).toString('hex')}`) + 1n;
}
