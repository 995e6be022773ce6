/**
 * Test-only certificate and key builders (never exported from the package index).
 * Keys are P-256 and cached so a test file generates only a handful.
 */
import { webcrypto, createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

const subtle = webcrypto.subtle;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const EC_P256: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' };

const keyCache = new Map<string, Promise<CryptoKeyPair>>();

/** A cached P-256 key pair per name (generate each name once per process). */
export function keyPair(name: string): Promise<CryptoKeyPair> {
  let p = keyCache.get(name);
  if (p === undefined) {
    p = subtle.generateKey(EC_P256, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
    keyCache.set(name, p);
  }
  return p;
}

export interface CertSpec {
  readonly subject: string;
  /** Issuer certificate and keys; omitted = self-signed with `keys`. */
  readonly issuer?: Cert;
  readonly keys: CryptoKeyPair;
  readonly uris?: readonly string[];
  readonly dns?: readonly string[];
  /** undefined = no basicConstraints extension. */
  readonly ca?: boolean;
  readonly pathLen?: number;
  /** KeyUsageFlags bit mask; undefined = no keyUsage extension. */
  readonly keyUsage?: number;
  readonly eku?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly extraExtensions?: readonly x509.Extension[];
  /** Raw DER value of a nameConstraints extension. */
  readonly nameConstraints?: Uint8Array;
}

export interface Cert {
  readonly der: Uint8Array;
  readonly keys: CryptoKeyPair;
  readonly subject: string;
}

export const T0 = new Date('2026-01-01T00:00:00Z');
const DAY = 86_400_000;
let serial = 1;

export async function makeCert(spec: CertSpec): Promise<Cert> {
  const exts: x509.Extension[] = [];
  if (spec.ca !== undefined) exts.push(new x509.BasicConstraintsExtension(spec.ca, spec.pathLen, true));
  if (spec.keyUsage !== undefined) exts.push(new x509.KeyUsagesExtension(spec.keyUsage, true));
  if (spec.eku !== undefined) exts.push(new x509.ExtendedKeyUsageExtension([...spec.eku]));
  const names: x509.JsonGeneralNames = [
    ...(spec.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(spec.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  if (names.length > 0) exts.push(new x509.SubjectAlternativeNameExtension(names, spec.subject === ''));
  if (spec.nameConstraints !== undefined) exts.push(new x509.Extension('2.5.29.30', true, spec.nameConstraints));
  exts.push(...(spec.extraExtensions ?? []));
  const signer = spec.issuer?.keys ?? spec.keys;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    subject: spec.subject,
    issuer: spec.issuer?.subject ?? spec.subject,
    notBefore: spec.notBefore ?? new Date(T0.getTime() - DAY),
    notAfter: spec.notAfter ?? new Date(T0.getTime() + 30 * DAY),
    publicKey: spec.keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: exts,
  });
  return { der: new Uint8Array(cert.rawData), keys: spec.keys, subject: spec.subject };
}

export const KU = x509.KeyUsageFlags;
export const EKU_SERVER = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT = '1.3.6.1.5.5.7.3.2';

export async function pkcs8(keys: CryptoKeyPair): Promise<Uint8Array> {
  return new Uint8Array(await subtle.exportKey('pkcs8', keys.privateKey));
}

export async function privateKeyObject(keys: CryptoKeyPair): Promise<KeyObject> {
  return createPrivateKey({ key: Buffer.from(await pkcs8(keys)), format: 'der', type: 'pkcs8' });
}

export async function publicJwk(keys: CryptoKeyPair): Promise<JsonWebKey> {
  const j = await subtle.exportKey('jwk', keys.publicKey);
  return { kty: j.kty, crv: j.crv, x: j.x, y: j.y } as JsonWebKey;
}

/** DER for a nameConstraints value with permitted URI/DNS subtrees. */
export function nameConstraintsDer(permitted: ReadonlyArray<['uri' | 'dns', string]>, excluded: ReadonlyArray<['uri' | 'dns', string]> = []): Uint8Array {
  const tlv = (tag: number, body: Uint8Array): Uint8Array => {
    const len = body.length;
    const head = len < 0x80 ? [tag, len] : len < 0x100 ? [tag, 0x81, len] : [tag, 0x82, len >> 8, len & 0xff];
    return Uint8Array.from([...head, ...body]);
  };
  const cat = (parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
  const subtree = ([kind, v]: ['uri' | 'dns', string]): Uint8Array =>
    tlv(0x30, tlv(kind === 'uri' ? 0x86 : 0x82, new TextEncoder().encode(v)));
  const parts: Uint8Array[] = [];
  if (permitted.length > 0) parts.push(tlv(0xa0, cat(permitted.map(subtree))));
  if (excluded.length > 0) parts.push(tlv(0xa1, cat(excluded.map(subtree))));
  return tlv(0x30, cat(parts));
}

export interface Pki {
  readonly rootKeys: CryptoKeyPair;
  readonly root: Cert;
  readonly intermediate: Cert;
  readonly leafKeys: CryptoKeyPair;
  /** Leaf signed by the root directly. */
  readonly leaf: Cert;
  /** Leaf signed by the intermediate. */
  readonly leafViaIntermediate: Cert;
}

const LEAF_KU = 1 | 4 | 16; // digitalSignature | keyEncipherment | keyAgreement
export const CA_KU = 32 | 64; // keyCertSign | cRLSign

/** A SPIRE-shaped PKI for trust domain `td`: root CA, intermediate CA and leaves. */
export async function makePki(td = 'example.org', workload = '/workload'): Promise<Pki> {
  const rootKeys = await keyPair(`root-${td}`);
  const interKeys = await keyPair(`inter-${td}`);
  const leafKeys = await keyPair('leaf');
  const root = await makeCert({ subject: `C=US, O=SPIFFE, CN=root ${td}`, keys: rootKeys, ca: true, keyUsage: CA_KU, uris: [`spiffe://${td}`] });
  const intermediate = await makeCert({ subject: `C=US, O=SPIFFE, CN=inter ${td}`, issuer: root, keys: interKeys, ca: true, keyUsage: CA_KU, uris: [`spiffe://${td}`] });
  const leafSpec = { subject: 'C=US, O=SPIRE', keys: leafKeys, ca: false, keyUsage: LEAF_KU, eku: [EKU_SERVER, EKU_CLIENT], uris: [`spiffe://${td}${workload}`] };
  const leaf = await makeCert({ ...leafSpec, issuer: root });
  const leafViaIntermediate = await makeCert({ ...leafSpec, issuer: intermediate });
  return { rootKeys, root, intermediate, leafKeys, leaf, leafViaIntermediate };
}

export const LEAF_KEY_USAGE = LEAF_KU;

/** DER of a SPIRE-shaped workload leaf (`spiffe://example.org/workload`) of `pki`, signed by `issuer`, with `over` applied. */
export async function makeLeaf(pki: Pki, over: Partial<CertSpec> = {}, issuer: Cert = pki.root): Promise<Uint8Array> {
  const c = await makeCert({
    subject: 'C=US, O=SPIRE',
    keys: pki.leafKeys,
    issuer,
    ca: false,
    keyUsage: LEAF_KU,
    eku: [EKU_SERVER, EKU_CLIENT],
    uris: ['spiffe://example.org/workload'],
    ...over,
  });
  return c.der;
}
export { x509 };
