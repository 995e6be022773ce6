import { createHash, type KeyObject } from 'node:crypto';
import { SpiffeError } from '../errors.ts';
import { SpiffeId } from '../id/spiffe-id.ts';
import { concatDer, derToPem, pemToDerList, splitConcatenatedDer } from '../internal/pem.ts';
import { importPkcs8PrivateKey } from '../internal/private-key.ts';
import { BoundedCache } from '../internal/bounded-cache.ts';
import { KU_CRL_SIGN, KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN, parseCertificate, type ParsedCertificate } from '../internal/x509.ts';

function svidError(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError('ERR_X509SVID_INVALID', `x509svid: ${message}`, { cause });
}

/** Thrown inside validation to carry the inner message; wrapped by the caller. */
class Inner extends Error {}

/** @internal the SPIFFE ID in a certificate's single URI SAN (go-spiffe x509svid.IDFromCert). */
export function idFromCert(cert: ParsedCertificate): SpiffeId {
  if (cert.uris.length === 0) throw new Inner('certificate contains no URI SAN');
  if (cert.uris.length > 1) throw new Inner('certificate contains more than one URI SAN');
  try {
    return SpiffeId.parse(cert.uris[0] as string);
  } catch (e) {
    throw new Inner((e as Error).message);
  }
}

/** @internal */
export function innerMessage(e: unknown): string | undefined {
  return e instanceof Inner ? e.message : undefined;
}

const KEY_TYPES = new Set(['rsa', 'ec', 'ed25519']);

/** What `parseRaw` made of one (chain, key) input: immutable, the certificates private copies. */
interface ParsedSvid {
  readonly id: SpiffeId;
  readonly certificates: readonly Uint8Array[];
  readonly privateKey: KeyObject;
}

/**
 * Parsed and validated `parseRaw` inputs by the SHA-256 of the chain and the key (the digest, not
 * the key bytes, is the map key); the last 32: a workload holds a handful of SVIDs at once.
 */
const parsedRaw = new BoundedCache<string, ParsedSvid>(32);

/**
 * The cache key of one `parseRaw` input: SHA-256 over the chain's length, the chain and the key,
 * so that every byte of both takes part and no two different (chain, key) pairs share a key.
 */
function rawDigest(certs: Uint8Array, key: Uint8Array): string {
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(certs.length);
  return createHash('sha256').update(len).update(certs).update(key).digest('base64');
}

/**
 * An X509-SVID: a SPIFFE ID, its certificate chain (leaf first, then intermediates) and the
 * leaf's private key. Construct with `parse`/`parseRaw`, which apply go-spiffe's checks.
 */
export class X509Svid {
  readonly id: SpiffeId;
  readonly certificates: Uint8Array[];
  readonly privateKey: KeyObject;
  hint?: string;

  private constructor(id: SpiffeId, certificates: Uint8Array[], privateKey: KeyObject) {
    this.id = id;
    this.certificates = certificates;
    this.privateKey = privateKey;
  }

  /** Parses PEM certificates (leaf first) and a PEM PKCS#8 private key. */
  static parse(certsPem: string, keyPem: string): X509Svid {
    let certs: Uint8Array[];
    try {
      certs = pemToDerList(certsPem, 'CERTIFICATE');
    } catch (e) {
      throw svidError(`cannot parse PEM encoded certificate: ${(e as Error).message}`, e);
    }
    let keys: Uint8Array[];
    try {
      keys = pemToDerList(keyPem, 'PRIVATE KEY');
    } catch (e) {
      throw svidError(`cannot parse PEM encoded private key: ${(e as Error).message}`, e);
    }
    if (keys.length > 1) throw svidError('cannot parse PEM encoded private key: more than one private key found');
    return X509Svid.#build(certs, keys[0], 'PEM');
  }

  /**
   * Parses concatenated DER certificates (leaf first) and a PKCS#8 DER private key (Workload API form).
   *
   * The Workload API resends the same chain and key in every response until the SVID rotates, so
   * the result of a (chain, key) pair that parsed and validated is kept (the last 32, by the
   * SHA-256 of every byte of both): the same bytes again skip the DER walk, the checks and the
   * key-match test, whose outcome depends on nothing but those bytes (this parse does not look at
   * the clock; verifying the chain and validity window is `verifyX509Svid`'s job, every time).
   * Each call still returns its own X509Svid with its own copies of the certificates.
   */
  static parseRaw(certsConcatDer: Uint8Array, pkcs8Der: Uint8Array): X509Svid {
    if (certsConcatDer instanceof Uint8Array && pkcs8Der instanceof Uint8Array && pkcs8Der.length > 0) {
      const digest = rawDigest(certsConcatDer, pkcs8Der);
      const hit = parsedRaw.get(digest);
      if (hit !== undefined) {
        return new X509Svid(
          hit.id,
          hit.certificates.map((c) => c.slice()),
          hit.privateKey,
        );
      }
      const svid = X509Svid.#parseRaw(certsConcatDer, pkcs8Der);
      parsedRaw.set(digest, { id: svid.id, certificates: svid.certificates.map((c) => c.slice()), privateKey: svid.privateKey });
      return svid;
    }
    return X509Svid.#parseRaw(certsConcatDer, pkcs8Der);
  }

  static #parseRaw(certsConcatDer: Uint8Array, pkcs8Der: Uint8Array): X509Svid {
    let certs: Uint8Array[];
    try {
      certs = splitConcatenatedDer(certsConcatDer);
    } catch (e) {
      throw svidError(`cannot parse DER encoded certificate: ${(e as Error).message}`, e);
    }
    if (!(pkcs8Der instanceof Uint8Array)) throw svidError('cannot parse DER encoded private key: input must be a Uint8Array');
    return X509Svid.#build(certs, pkcs8Der.length === 0 ? undefined : pkcs8Der, 'DER');
  }

  static #build(ders: Uint8Array[], keyDer: Uint8Array | undefined, enc: 'PEM' | 'DER'): X509Svid {
    const certs: ParsedCertificate[] = [];
    for (const d of ders) {
      try {
        certs.push(parseCertificate(d));
      } catch (e) {
        throw svidError(`cannot parse ${enc} encoded certificate: ${(e as Error).message}`, e);
      }
    }
    let key: KeyObject | undefined;
    if (keyDer !== undefined) {
      try {
        key = importPkcs8PrivateKey(keyDer);
      } catch (e) {
        throw svidError(`cannot parse ${enc} encoded private key: invalid PKCS#8 private key`, e);
      }
    }
    let id: SpiffeId;
    try {
      id = validateCertificates(certs);
    } catch (e) {
      if (e instanceof Inner) throw svidError(`certificate validation failed: ${e.message}`, e);
      throw e;
    }
    try {
      validatePrivateKey(key, certs[0] as ParsedCertificate);
    } catch (e) {
      if (e instanceof Inner) throw svidError(`private key validation failed: ${e.message}`, e);
      throw e;
    }
    return new X509Svid(
      id,
      certs.map((c) => Uint8Array.from(c.der)),
      key as KeyObject,
    );
  }

  /**
   * @internal a new X509Svid equal to `svid` (same ID, key and hint) with its own copies of the
   * certificates: the Workload API client hands out one per fetch of bytes it parsed before.
   */
  static copyOf(svid: X509Svid): X509Svid {
    const copy = new X509Svid(
      svid.id,
      svid.certificates.map((c) => c.slice()),
      svid.privateKey,
    );
    if (svid.hint !== undefined) copy.hint = svid.hint;
    return copy;
  }

  /** PEM certificates (leaf first) and PEM PKCS#8 private key. */
  marshal(): { certificates: string; privateKey: string } {
    return {
      certificates: this.certificates.map((d) => derToPem(d, 'CERTIFICATE')).join(''),
      privateKey: derToPem(this.#pkcs8(), 'PRIVATE KEY'),
    };
  }

  /** Concatenated DER certificates and PKCS#8 DER private key. */
  marshalRaw(): { certificates: Uint8Array; privateKey: Uint8Array } {
    return { certificates: concatDer(this.certificates), privateKey: this.#pkcs8() };
  }

  #pkcs8(): Uint8Array {
    return new Uint8Array(this.privateKey.export({ format: 'der', type: 'pkcs8' }));
  }

  /** The leaf certificate (DER). */
  leaf(): Uint8Array {
    return this.certificates[0] as Uint8Array;
  }

  /** The leaf's notAfter. */
  expiresAt(): Date {
    return new Date(parseCertificate(this.leaf()).notAfter.getTime());
  }

  /** The leaf's notBefore. */
  notBefore(): Date {
    return new Date(parseCertificate(this.leaf()).notBefore.getTime());
  }
}

/** go-spiffe validateCertificates: leaf rules, then each signing certificate. */
function validateCertificates(certs: ParsedCertificate[]): SpiffeId {
  const leaf = certs[0];
  if (leaf === undefined) throw new Inner('no certificates found');
  let id: SpiffeId;
  try {
    id = idFromCert(leaf);
  } catch (e) {
    if (e instanceof Inner) throw new Inner(`cannot get leaf certificate SPIFFE ID: ${e.message}`);
    throw e;
  }
  if (id.isTrustDomainId()) throw new Inner('leaf certificate SPIFFE ID must have a non-root path');
  if (leaf.isCa) throw new Inner('leaf certificate must not have CA flag set to true');
  if ((leaf.keyUsage & KU_DIGITAL_SIGNATURE) === 0) {
    throw new Inner("leaf certificate must have 'digitalSignature' set as key usage");
  }
  if (leaf.keyUsage & KU_KEY_CERT_SIGN) throw new Inner("leaf certificate must not have 'keyCertSign' set as key usage");
  if (leaf.keyUsage & KU_CRL_SIGN) throw new Inner("leaf certificate must not have 'cRLSign' set as key usage");
  for (const c of certs.slice(1)) {
    if (!c.isCa) throw new Inner('signing certificate must have CA flag set to true');
    if ((c.keyUsage & KU_KEY_CERT_SIGN) === 0) {
      throw new Inner("signing certificate must have 'keyCertSign' set as key usage");
    }
  }
  return id;
}

function validatePrivateKey(key: KeyObject | undefined, leaf: ParsedCertificate): void {
  if (key === undefined) throw new Inner('no private key found');
  const t = key.asymmetricKeyType ?? 'unknown';
  if (!KEY_TYPES.has(t)) throw new Inner(`unsupported private key type ${t}`);
  let match = false;
  try {
    match = leaf.node.checkPrivateKey(key);
  } catch {
    match = false;
  }
  if (!match) throw new Inner('leaf certificate does not match private key');
}
