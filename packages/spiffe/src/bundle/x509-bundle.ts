import { SpiffeError } from '../errors.ts';
import type { TrustDomain } from '../id/trust-domain.ts';
import { bytesEqual } from '../internal/base64.ts';
import { concatDer, derToPem, pemToDerList, splitConcatenatedDer } from '../internal/pem.ts';
import { parseCertificate } from '../internal/x509.ts';
import type { X509BundleSource } from './source.ts';

function bundleError(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError('ERR_BUNDLE_INVALID', `x509bundle: ${message}`, { cause });
}

function checkCert(der: Uint8Array): Uint8Array {
  try {
    parseCertificate(der);
  } catch (e) {
    throw bundleError(`cannot parse certificate: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  return der;
}

/**
 * The X.509 authorities (root CA certificates, DER) of one trust domain. Authorities are kept
 * in insertion order without duplicates. A bundle is also an X509BundleSource for its own
 * trust domain.
 */
export class X509Bundle implements X509BundleSource {
  readonly trustDomain: TrustDomain;
  #authorities: Uint8Array[] = [];

  constructor(trustDomain: TrustDomain) {
    this.trustDomain = trustDomain;
  }

  static fromAuthorities(td: TrustDomain, ders: readonly Uint8Array[]): X509Bundle {
    const b = new X509Bundle(td);
    for (const d of ders) b.addAuthority(d);
    return b;
  }

  /** Parses PEM CERTIFICATE blocks. Empty input gives an empty bundle (as go-spiffe). */
  static parse(td: TrustDomain, pem: string): X509Bundle {
    let ders: Uint8Array[];
    try {
      ders = pemToDerList(pem, 'CERTIFICATE');
    } catch (e) {
      throw bundleError(`cannot parse certificate: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    return X509Bundle.fromAuthorities(td, ders);
  }

  /** Parses concatenated DER certificates (the Workload API encoding). */
  static parseRaw(td: TrustDomain, concatenatedDer: Uint8Array): X509Bundle {
    let ders: Uint8Array[];
    try {
      ders = splitConcatenatedDer(concatenatedDer);
    } catch (e) {
      throw bundleError(`cannot parse certificate: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    return X509Bundle.fromAuthorities(td, ders);
  }

  /** DER copies of the authorities. */
  authorities(): Uint8Array[] {
    return this.#authorities.map((d) => d.slice());
  }

  hasAuthority(der: Uint8Array): boolean {
    return this.#authorities.some((a) => bytesEqual(a, der));
  }

  addAuthority(der: Uint8Array): void {
    if (this.hasAuthority(der)) return;
    this.#authorities.push(checkCert(Uint8Array.from(der)));
  }

  removeAuthority(der: Uint8Array): void {
    this.#authorities = this.#authorities.filter((a) => !bytesEqual(a, der));
  }

  /** The authorities as PEM CERTIFICATE blocks. */
  marshal(): string {
    return this.#authorities.map((d) => derToPem(d, 'CERTIFICATE')).join('');
  }

  /** The authorities as concatenated DER (Workload API encoding). */
  marshalRaw(): Uint8Array {
    return concatDer(this.#authorities);
  }

  empty(): boolean {
    return this.#authorities.length === 0;
  }

  equals(other: X509Bundle): boolean {
    if (!this.trustDomain.equals(other.trustDomain)) return false;
    const a = this.#authorities;
    const b = other.#authorities;
    return a.length === b.length && a.every((d, i) => bytesEqual(d, b[i] as Uint8Array));
  }

  clone(): X509Bundle {
    return X509Bundle.fromAuthorities(this.trustDomain, this.#authorities);
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    if (!td.equals(this.trustDomain)) {
      throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `x509bundle: no X.509 bundle for trust domain "${td.name}"`);
    }
    return this;
  }
}
