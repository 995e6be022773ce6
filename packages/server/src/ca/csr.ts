import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { invalidArgument } from '@ztwim/core';
import { rememberSpki } from './spki.ts';
import { children, DerError, expectTag, raw, readOid, readTlv, TAG_OID, value, type Tlv } from '@ztwim/spiffe/internal';

/** What the CA takes from a PKCS#10 certificate signing request. */
export interface ParsedCsr {
  /** The requester's public key; the only part of a CSR the CA puts into an SVID. */
  readonly publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo of publicKey. */
  readonly spki: Buffer;
  /** DER of the requested subject Name. */
  readonly subject: Buffer;
  /** URI SANs from the extensionRequest attribute (informational; not trusted). */
  readonly uris: string[];
  /** DNS SANs from the extensionRequest attribute. */
  readonly dnsNames: string[];
  /** Dotted OID of the self-signature algorithm. */
  readonly signatureAlgorithm: string;
}

const SIG_ALGS: Record<string, { hash: string | null; kty: string }> = {
  '1.2.840.10045.4.3.2': { hash: 'sha256', kty: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', kty: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', kty: 'ec' },
  '1.2.840.113549.1.1.11': { hash: 'sha256', kty: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', kty: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', kty: 'rsa' },
  '1.3.101.112': { hash: null, kty: 'ed25519' },
};
const EC_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SAN = '2.5.29.17';
const MAX_CSR_BYTES = 64 * 1024;

const bad = (msg: string, cause?: unknown): Error => invalidArgument(`csr: ${msg}`, cause === undefined ? undefined : { cause });

/**
 * Parses a DER PKCS#10 CSR and verifies its self-signature. Any malformed input or bad signature
 * throws ZtwimError(ERR_INVALID_ARGUMENT) with a message naming the problem.
 */
export function parseCsr(der: Uint8Array): ParsedCsr {
  if (!(der instanceof Uint8Array)) throw bad('expected DER bytes');
  if (der.length === 0) throw bad('empty request');
  if (der.length > MAX_CSR_BYTES) throw bad(`request larger than ${MAX_CSR_BYTES} bytes`);
  try {
    return parseStructure(der);
  } catch (e) {
    if (e instanceof DerError) throw bad(`malformed DER: ${e.message}`);
    throw e;
  }
}

function parseStructure(der: Uint8Array): ParsedCsr {
  const outer = expectTag(readTlv(der, 0), 0x30, 'certification request');
  if (outer.end !== der.length) throw bad('trailing data after the request');
  const [infoT, algT, sigT, ...extra] = children(der, outer);
  if (!infoT || !algT || !sigT || extra.length > 0) throw bad('expected info, signature algorithm and signature');
  if (infoT.tag !== 0x30 || algT.tag !== 0x30 || sigT.tag !== 0x03) throw bad('unexpected element types in the request');

  const [verT, subjT, spkiT, attrT, ...more] = children(der, infoT);
  if (!verT || !subjT || !spkiT || more.length > 0) throw bad('request info must hold version, subject, key and attributes');
  if (verT.tag !== 0x02 || value(der, verT).length !== 1 || value(der, verT)[0] !== 0) throw bad('unsupported version (want v1 = 0)');
  if (subjT.tag !== 0x30) throw bad('subject is not a name');
  if (spkiT.tag !== 0x30) throw bad('subject public key info is not a sequence');
  if (attrT !== undefined && attrT.tag !== 0xa0) throw bad('attributes must be [0] set');

  const [algOidT, ...algParams] = children(der, algT);
  if (!algOidT) throw bad('missing signature algorithm');
  const algOid = readOid(der, expectTag(algOidT, TAG_OID, 'signature algorithm'));
  const alg = SIG_ALGS[algOid];
  if (!alg) throw bad(`unsupported signature algorithm ${algOid}`);
  if (algParams.length > 1 || (algParams[0] && !(algParams[0].tag === 0x05 && algParams[0].end === algParams[0].valueStart))) {
    throw bad('unexpected signature algorithm parameters');
  }

  const spki = Buffer.from(raw(der, spkiT));
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (cause) {
    throw bad('invalid subject public key', cause);
  }
  checkKey(publicKey, alg.kty);
  rememberSpki(publicKey, spki);

  const sigBits = value(der, sigT);
  if (sigBits.length < 2 || sigBits[0] !== 0) throw bad('malformed signature bit string');
  let ok: boolean;
  try {
    ok = verify(alg.hash, raw(der, infoT), publicKey, sigBits.subarray(1));
  } catch (cause) {
    throw bad('signature check failed', cause);
  }
  if (!ok) throw bad('signature does not verify with the request public key');

  const { uris, dnsNames } = attrT ? readSans(der, attrT) : { uris: [], dnsNames: [] };
  return { publicKey, spki, subject: Buffer.from(raw(der, subjT)), uris, dnsNames, signatureAlgorithm: algOid };
}

function checkKey(key: KeyObject, wantKty: string): void {
  const kty = key.asymmetricKeyType;
  if (kty !== wantKty) throw bad(`signature algorithm does not match the ${kty ?? 'unknown'} public key`);
  const d = key.asymmetricKeyDetails;
  if (kty === 'ec' && !EC_CURVES.has(d?.namedCurve ?? '')) throw bad(`unsupported curve ${d?.namedCurve ?? 'unknown'}`);
  if (kty === 'rsa' && (d?.modulusLength ?? 0) < 2048) throw bad(`rsa key too small (${d?.modulusLength ?? 0} bits, want >= 2048)`);
}

function readSans(der: Uint8Array, attrs: Tlv): { uris: string[]; dnsNames: string[] } {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const attr of children(der, attrs)) {
    if (attr.tag !== 0x30) throw bad('attribute is not a sequence');
    const [typeT, valuesT] = children(der, attr);
    if (!typeT || !valuesT || valuesT.tag !== 0x31) throw bad('malformed attribute');
    if (readOid(der, expectTag(typeT, TAG_OID, 'attribute type')) !== OID_EXTENSION_REQUEST) continue;
    const [extsT] = children(der, valuesT);
    if (!extsT || extsT.tag !== 0x30) throw bad('malformed extension request');
    for (const ext of children(der, extsT)) {
      if (ext.tag !== 0x30) throw bad('malformed extension');
      const parts = children(der, ext);
      const idT = parts[0];
      const valT = parts[parts.length - 1];
      if (!idT || !valT || parts.length < 2 || valT.tag !== 0x04) throw bad('malformed extension');
      if (readOid(der, expectTag(idT, TAG_OID, 'extension ID')) !== OID_SAN) continue;
      const names = readTlv(der, valT.valueStart, valT.end);
      if (names.tag !== 0x30 || names.end !== valT.end) throw bad('malformed subject alternative names');
      for (const gn of children(der, names)) {
        if (gn.tag === 0x82) dnsNames.push(Buffer.from(value(der, gn)).toString('latin1'));
        else if (gn.tag === 0x86) uris.push(Buffer.from(value(der, gn)).toString('latin1'));
      }
    }
  }
  return { uris, dnsNames };
}
