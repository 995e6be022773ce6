import { X509Certificate as NodeX509Certificate, type KeyObject } from 'node:crypto';
import { SpiffeError } from '../errors.ts';
import { BoundedCache } from './bounded-cache.ts';
import {
  DerError,
  TAG_BIT_STRING,
  TAG_BOOLEAN,
  TAG_INTEGER,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
  children,
  expectTag,
  raw,
  readBoolean,
  readOid,
  readSmallUint,
  readTime,
  readTlv,
  value,
} from './der.ts';

export const KU_DIGITAL_SIGNATURE = 1 << 0;
export const KU_KEY_ENCIPHERMENT = 1 << 2;
export const KU_KEY_AGREEMENT = 1 << 4;
export const KU_KEY_CERT_SIGN = 1 << 5;
export const KU_CRL_SIGN = 1 << 6;

export const OID_SUBJECT_KEY_ID = '2.5.29.14';
export const OID_KEY_USAGE = '2.5.29.15';
export const OID_SUBJECT_ALT_NAME = '2.5.29.17';
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_NAME_CONSTRAINTS = '2.5.29.30';
export const OID_AUTHORITY_KEY_ID = '2.5.29.35';
export const OID_EXT_KEY_USAGE = '2.5.29.37';

/** Critical extensions this SDK understands and enforces; any other critical one fails validation. */
const HANDLED_CRITICAL = new Set([
  OID_SUBJECT_KEY_ID,
  OID_KEY_USAGE,
  OID_SUBJECT_ALT_NAME,
  OID_BASIC_CONSTRAINTS,
  OID_NAME_CONSTRAINTS,
  OID_AUTHORITY_KEY_ID,
  OID_EXT_KEY_USAGE,
]);

/** Signature algorithms accepted on certificates (Go's crypto/x509 secure set). */
const SIGNATURE_ALGORITHMS = new Set([
  '1.2.840.113549.1.1.11', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12', // sha384WithRSAEncryption
  '1.2.840.113549.1.1.13', // sha512WithRSAEncryption
  '1.2.840.113549.1.1.10', // RSASSA-PSS
  '1.2.840.10045.4.3.2', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3', // ecdsa-with-SHA384
  '1.2.840.10045.4.3.4', // ecdsa-with-SHA512
  '1.3.101.112', // Ed25519
]);

export interface CertExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

export interface NameConstraintSubtree {
  /** GeneralName tag number: 1 rfc822, 2 dNSName, 4 directoryName, 6 URI, 7 iPAddress, ... */
  readonly kind: number;
  readonly value: Uint8Array;
}

export interface NameConstraints {
  readonly permitted: readonly NameConstraintSubtree[];
  readonly excluded: readonly NameConstraintSubtree[];
}

/** The parts of an X.509 certificate the SDK uses, parsed strictly from DER. */
export interface ParsedCertificate {
  readonly der: Uint8Array;
  readonly version: number;
  readonly rawIssuer: Uint8Array;
  readonly rawSubject: Uint8Array;
  readonly signatureAlgorithm: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly CertExtension[];
  /** basicConstraints present (whatever its cA value). */
  readonly basicConstraintsValid: boolean;
  readonly isCa: boolean;
  /** undefined when absent. */
  readonly maxPathLen: number | undefined;
  /** Key usage bit mask (bit i = KeyUsage bit i); 0 when the extension is absent. */
  readonly keyUsage: number;
  readonly hasKeyUsage: boolean;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly extKeyUsage: readonly string[] | undefined;
  readonly nameConstraints: NameConstraints | undefined;
  readonly unhandledCriticalExtensions: readonly string[];
  readonly node: NodeX509Certificate;
  readonly publicKey: KeyObject;
}

function certError(message: string): SpiffeError {
  return new SpiffeError('ERR_X509_INVALID', `x509: ${message}`);
}

/** Parsed certificates by content (bounded). Entries hold private copies of the DER. */
const cache = new BoundedCache<string, ParsedCertificate>(512);

/**
 * Parses one DER certificate. Throws SpiffeError(ERR_X509_INVALID) on any malformation,
 * including trailing data, duplicate extensions and unsupported signature algorithms.
 * The result refers to a private copy of `der`, so later changes to `der` do not affect it.
 */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  if (!(der instanceof Uint8Array)) throw certError('certificate must be a Uint8Array');
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  let parsed: ParsedCertificate;
  try {
    parsed = parseStrict(Uint8Array.from(der));
  } catch (e) {
    if (e instanceof SpiffeError) throw e;
    if (e instanceof DerError) throw certError(`malformed certificate: ${e.message}`);
    throw certError('malformed certificate');
  }
  cache.set(key, parsed);
  return parsed;
}

/**
 * notBefore / notAfter of a DER certificate, reading the TBSCertificate only up to its validity
 * (no signature, key or extension parsing, no cache): for callers that take in thousands of
 * certificates at once, e.g. an agent minting every workload SVID after it starts, where a full
 * parse (or node's X509Certificate, ~0.1–0.3 ms each) costs seconds of event loop.
 * Throws SpiffeError(ERR_X509_INVALID) on a malformed prefix.
 */
export function certificateValidity(der: Uint8Array): { notBefore: Date; notAfter: Date } {
  try {
    const top = expectTag(readTlv(der, 0), TAG_SEQUENCE, 'certificate');
    const tbs = expectTag(readTlv(der, top.valueStart, top.end), TAG_SEQUENCE, 'tbsCertificate');
    let t = readTlv(der, tbs.valueStart, tbs.end);
    if (t.tag === 0xa0) t = readTlv(der, t.end, tbs.end); // version
    expectTag(t, TAG_INTEGER, 'serialNumber');
    t = expectTag(readTlv(der, t.end, tbs.end), TAG_SEQUENCE, 'signature');
    t = expectTag(readTlv(der, t.end, tbs.end), TAG_SEQUENCE, 'issuer');
    const validity = expectTag(readTlv(der, t.end, tbs.end), TAG_SEQUENCE, 'validity');
    const [nbT, naT, more] = children(der, validity);
    if (nbT === undefined || naT === undefined || more !== undefined) throw certError('malformed validity');
    return { notBefore: readTime(der, nbT), notAfter: readTime(der, naT) };
  } catch (e) {
    if (e instanceof SpiffeError) throw e;
    throw certError(`malformed certificate: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function parseStrict(der: Uint8Array): ParsedCertificate {
  if (!(der instanceof Uint8Array)) throw certError('certificate must be a Uint8Array');
  const top = expectTag(readTlv(der, 0), TAG_SEQUENCE, 'certificate');
  if (top.end !== der.length) throw certError('trailing data after certificate');
  const [tbsT, sigAlgT, sigT, extra] = children(der, top);
  if (extra !== undefined) throw certError('malformed certificate: too many fields');
  const tbs = expectTag(tbsT, TAG_SEQUENCE, 'tbsCertificate');
  const outerAlg = readAlgorithmOid(der, expectTag(sigAlgT, TAG_SEQUENCE, 'signatureAlgorithm'));
  expectTag(sigT, TAG_BIT_STRING, 'signature');
  const fields = children(der, tbs);
  let i = 0;
  let version = 1;
  if (fields[0]?.tag === 0xa0) {
    const [v, more] = children(der, fields[0]);
    if (v === undefined || more !== undefined) throw certError('malformed version');
    version = readSmallUint(der, v) + 1;
    if (version < 2 || version > 3) throw certError('invalid version');
    i++;
  }
  const serialT = expectTag(fields[i++], TAG_INTEGER, 'serialNumber');
  if (value(der, serialT).length === 0) throw certError('empty serial number');
  const innerAlg = readAlgorithmOid(der, expectTag(fields[i++], TAG_SEQUENCE, 'signature'));
  if (innerAlg !== outerAlg) throw certError('signature algorithm mismatch');
  if (!SIGNATURE_ALGORITHMS.has(outerAlg)) throw certError(`unsupported signature algorithm ${outerAlg}`);
  const issuerT = expectTag(fields[i++], TAG_SEQUENCE, 'issuer');
  const validityT = expectTag(fields[i++], TAG_SEQUENCE, 'validity');
  const subjectT = expectTag(fields[i++], TAG_SEQUENCE, 'subject');
  expectTag(fields[i++], TAG_SEQUENCE, 'subjectPublicKeyInfo');
  const [nbT, naT, moreV] = children(der, validityT);
  if (nbT === undefined || naT === undefined || moreV !== undefined) throw certError('malformed validity');
  const notBefore = readTime(der, nbT);
  const notAfter = readTime(der, naT);
  if (fields[i]?.tag === 0x81) i++;
  if (fields[i]?.tag === 0x82) i++;
  const extensions: CertExtension[] = [];
  if (fields[i]?.tag === 0xa3) {
    if (version !== 3) throw certError('extensions require version 3');
    const [seq, more] = children(der, fields[i] as NonNullable<(typeof fields)[number]>);
    if (seq === undefined || more !== undefined) throw certError('malformed extensions');
    const list = children(der, expectTag(seq, TAG_SEQUENCE, 'extensions'));
    if (list.length === 0) throw certError('empty extensions');
    const seen = new Set<string>();
    for (const e of list) {
      const parts = children(der, expectTag(e, TAG_SEQUENCE, 'extension'));
      const oid = readOid(der, expectTag(parts[0], TAG_OID, 'extnID'));
      let critical = false;
      let k = 1;
      if (parts[1]?.tag === TAG_BOOLEAN) {
        // An explicit FALSE is not DER but is accepted, as Go does.
        critical = readBoolean(der, parts[1]);
        k = 2;
      }
      const val = expectTag(parts[k], TAG_OCTET_STRING, 'extnValue');
      if (parts[k + 1] !== undefined) throw certError('malformed extension');
      if (seen.has(oid)) throw certError(`duplicate extension ${oid}`);
      seen.add(oid);
      extensions.push({ oid, critical, value: value(der, val).slice() });
    }
    i++;
  }
  if (fields[i] !== undefined) throw certError('malformed tbsCertificate: unexpected field');

  let basicConstraintsValid = false;
  let isCa = false;
  let maxPathLen: number | undefined;
  let keyUsage = 0;
  let hasKeyUsage = false;
  const uris: string[] = [];
  const dnsNames: string[] = [];
  let extKeyUsage: string[] | undefined;
  let nameConstraints: NameConstraints | undefined;
  const unhandled: string[] = [];
  for (const ext of extensions) {
    const v = ext.value;
    switch (ext.oid) {
      case OID_BASIC_CONSTRAINTS: {
        basicConstraintsValid = true;
        const seq = readWhole(v, TAG_SEQUENCE, 'basicConstraints');
        const parts = children(v, seq);
        let k = 0;
        if (parts[k]?.tag === TAG_BOOLEAN) {
          isCa = readBoolean(v, parts[k] as NonNullable<(typeof parts)[number]>);
          k++;
        }
        if (parts[k] !== undefined) {
          maxPathLen = readSmallUint(v, expectTag(parts[k], TAG_INTEGER, 'pathLenConstraint'));
          k++;
        }
        if (parts[k] !== undefined) throw certError('malformed basicConstraints');
        break;
      }
      case OID_KEY_USAGE: {
        hasKeyUsage = true;
        const bs = readWhole(v, TAG_BIT_STRING, 'keyUsage');
        const bytes = value(v, bs);
        const unused = bytes[0];
        if (unused === undefined || unused > 7 || (bytes.length === 1 && unused !== 0)) {
          throw certError('malformed keyUsage');
        }
        for (let b = 1; b < bytes.length; b++) {
          const byte = bytes[b] as number;
          for (let bit = 0; bit < 8; bit++) {
            if (byte & (0x80 >> bit)) keyUsage |= 1 << ((b - 1) * 8 + bit);
          }
        }
        if (keyUsage === 0) throw certError('keyUsage with no bits set');
        break;
      }
      case OID_SUBJECT_ALT_NAME: {
        const seq = readWhole(v, TAG_SEQUENCE, 'subjectAltName');
        const names = children(v, seq);
        if (names.length === 0) throw certError('empty subjectAltName');
        for (const n of names) {
          if (n.tag === 0x86) uris.push(ia5(value(v, n), 'URI'));
          else if (n.tag === 0x82) dnsNames.push(ia5(value(v, n), 'DNS name'));
        }
        break;
      }
      case OID_EXT_KEY_USAGE: {
        const seq = readWhole(v, TAG_SEQUENCE, 'extKeyUsage');
        extKeyUsage = children(v, seq).map((t) => readOid(v, expectTag(t, TAG_OID, 'keyPurposeId')));
        if (extKeyUsage.length === 0) throw certError('empty extKeyUsage');
        break;
      }
      case OID_NAME_CONSTRAINTS:
        nameConstraints = parseNameConstraints(v);
        break;
      default:
        if (ext.critical && !HANDLED_CRITICAL.has(ext.oid)) unhandled.push(ext.oid);
    }
  }

  let node: NodeX509Certificate;
  try {
    node = new NodeX509Certificate(der);
  } catch {
    throw certError('malformed certificate');
  }
  return {
    der,
    version,
    rawIssuer: raw(der, issuerT),
    rawSubject: raw(der, subjectT),
    signatureAlgorithm: outerAlg,
    notBefore,
    notAfter,
    extensions,
    basicConstraintsValid,
    isCa,
    maxPathLen,
    keyUsage,
    hasKeyUsage,
    uris,
    dnsNames,
    extKeyUsage,
    nameConstraints,
    unhandledCriticalExtensions: unhandled,
    node,
    publicKey: node.publicKey,
  };
}

function readAlgorithmOid(buf: Uint8Array, t: ReturnType<typeof readTlv>): string {
  const parts = children(buf, t);
  return readOid(buf, expectTag(parts[0], TAG_OID, 'algorithm'));
}

function readWhole(v: Uint8Array, tag: number, what: string): ReturnType<typeof readTlv> {
  const t = expectTag(readTlv(v, 0), tag, what);
  if (t.end !== v.length) throw certError(`trailing data in ${what}`);
  return t;
}

function ia5(b: Uint8Array, what: string): string {
  for (const c of b) if (c > 0x7e || c < 0x20) throw certError(`${what} SAN contains invalid characters`);
  return Buffer.from(b).toString('latin1');
}

function parseNameConstraints(v: Uint8Array): NameConstraints {
  const seq = readWhole(v, TAG_SEQUENCE, 'nameConstraints');
  const permitted: NameConstraintSubtree[] = [];
  const excluded: NameConstraintSubtree[] = [];
  for (const part of children(v, seq)) {
    let target: NameConstraintSubtree[];
    if (part.tag === 0xa0) target = permitted;
    else if (part.tag === 0xa1) target = excluded;
    else throw certError('malformed nameConstraints');
    for (const sub of children(v, part)) {
      const [base, ...rest] = children(v, expectTag(sub, TAG_SEQUENCE, 'GeneralSubtree'));
      if (base === undefined) throw certError('malformed GeneralSubtree');
      if (rest.length > 0) throw certError('nameConstraints minimum/maximum are not supported');
      target.push({ kind: base.tag & 0x1f, value: value(v, base).slice() });
    }
  }
  return { permitted, excluded };
}
