import { SpiffeError } from '../errors.ts';
import type { SpiffeId } from '../id/spiffe-id.ts';
import type { X509BundleSource } from '../bundle/source.ts';
import type { X509Bundle } from '../bundle/x509-bundle.ts';
import { bytesEqual } from '../internal/base64.ts';
import { KU_CRL_SIGN, KU_KEY_CERT_SIGN, parseCertificate, type ParsedCertificate } from '../internal/x509.ts';
import { checkNameConstraints } from '../internal/name-constraints.ts';
import { idFromCert, innerMessage } from './x509-svid.ts';

export interface VerifyX509SvidOptions {
  /** Verification time; defaults to the current time. */
  readonly now?: Date;
}

export interface VerifiedX509Svid {
  readonly id: SpiffeId;
  /** Every chain that verified: leaf first, ending with a bundle authority. */
  readonly verifiedChains: Uint8Array[][];
}

const MAX_SIGNATURE_CHECKS = 100;
const MAX_CHAIN_LENGTH = 16;

function untrusted(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError('ERR_X509SVID_UNTRUSTED', `x509svid: ${message}`, { cause });
}

function invalid(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError('ERR_X509SVID_INVALID', `x509svid: ${message}`, { cause });
}

/**
 * Verifies an X509-SVID chain (leaf first, then intermediates) against the bundle of the
 * leaf's trust domain, as go-spiffe's x509svid.Verify: leaf URI SAN and CA/key-usage rules,
 * then RFC 5280 path validation (signatures, validity of every certificate at `now`, issuer
 * CA flag and keyCertSign, pathLen and name constraints, raw issuer/subject name chaining,
 * unknown critical extensions). Stricter than go-spiffe: the leaf's SPIFFE ID must have a
 * non-root path (X509-SVID §3.1, §5.2). Extended key usage is not enforced.
 */
export function verifyX509Svid(chain: readonly Uint8Array[], source: X509BundleSource, opts: VerifyX509SvidOptions = {}): VerifiedX509Svid {
  if (!Array.isArray(chain) || chain.length === 0) throw invalid('empty certificates chain');
  if (source === undefined || source === null) throw invalid('bundleSource is required');
  const now = opts.now ?? new Date();
  if (!(now instanceof Date) || !Number.isFinite(now.getTime())) throw invalid('invalid verification time');
  const certs: ParsedCertificate[] = [];
  for (const der of chain) {
    try {
      certs.push(parseCertificate(der));
    } catch (e) {
      throw invalid(`could not parse certificate: ${(e as Error).message}`, e);
    }
  }
  const leaf = certs[0] as ParsedCertificate;
  let id: SpiffeId;
  try {
    id = idFromCert(leaf);
  } catch (e) {
    const m = innerMessage(e);
    if (m !== undefined) throw invalid(`could not get leaf SPIFFE ID: ${m}`, e);
    throw e;
  }
  // X509-SVID §3.1, §5.2: a leaf's ID has a non-root path (the parser's rule; go-spiffe's
  // Verify skips it, so a CA-less trust-domain ID would otherwise pass as a peer).
  if (id.isTrustDomainId()) throw invalid('leaf certificate SPIFFE ID must have a non-root path');
  if (leaf.isCa) throw invalid('leaf certificate with CA flag set to true');
  if (leaf.keyUsage & KU_KEY_CERT_SIGN) throw invalid('leaf certificate with KeyCertSign key usage');
  if (leaf.keyUsage & KU_CRL_SIGN) throw invalid('leaf certificate with KeyCrlSign key usage');

  let bundle: X509Bundle;
  try {
    bundle = source.getX509BundleForTrustDomain(id.trustDomain);
  } catch (e) {
    throw untrusted(`could not get X509 bundle: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  const roots: ParsedCertificate[] = [];
  for (const der of bundle.authorities()) {
    try {
      roots.push(parseCertificate(der));
    } catch {
      // a bundle only holds parseable certificates; skip anything else defensively
    }
  }
  const verifier = new ChainBuilder(roots, certs.slice(1), now);
  const chains = verifier.build(leaf);
  if (chains.length === 0) {
    throw untrusted(`could not verify leaf certificate: ${verifier.lastError ?? 'x509: certificate signed by unknown authority'}`);
  }
  return { id, verifiedChains: chains.map((c) => c.map((p) => Uint8Array.from(p.der))) };
}

class ChainBuilder {
  readonly roots: ParsedCertificate[];
  readonly intermediates: ParsedCertificate[];
  readonly now: Date;
  signatureChecks = 0;
  lastError: string | undefined;

  constructor(roots: ParsedCertificate[], intermediates: ParsedCertificate[], now: Date) {
    this.roots = roots;
    this.intermediates = intermediates;
    this.now = now;
  }

  build(leaf: ParsedCertificate): ParsedCertificate[][] {
    const err = this.checkCert(leaf, 'leaf', [leaf]);
    if (err !== undefined) {
      this.lastError = err;
      return [];
    }
    const out: ParsedCertificate[][] = [];
    this.extend([leaf], out);
    return out;
  }

  /** Problems with `c` at its position, or undefined. `chain` ends with `c`. */
  checkCert(c: ParsedCertificate, kind: 'leaf' | 'intermediate' | 'root', chain: ParsedCertificate[]): string | undefined {
    const t = this.now.getTime();
    if (t < c.notBefore.getTime()) {
      return `x509: certificate has expired or is not yet valid: current time ${this.now.toISOString()} is before ${c.notBefore.toISOString()}`;
    }
    if (t > c.notAfter.getTime()) {
      return `x509: certificate has expired or is not yet valid: current time ${this.now.toISOString()} is after ${c.notAfter.toISOString()}`;
    }
    if (c.unhandledCriticalExtensions.length > 0) {
      return `x509: unhandled critical extension ${c.unhandledCriticalExtensions.join(', ')}`;
    }
    if (kind !== 'leaf') {
      if (!c.basicConstraintsValid || !c.isCa) return 'x509: certificate is not authorized to sign other certificates';
      if (c.hasKeyUsage && (c.keyUsage & KU_KEY_CERT_SIGN) === 0) {
        return 'x509: certificate is not authorized to sign other certificates (no keyCertSign key usage)';
      }
      // Number of intermediates below c (chain = leaf, ..., c).
      const below = chain.length - 2;
      if (c.maxPathLen !== undefined && below > c.maxPathLen) return 'x509: too many intermediates for path length constraint';
      if (c.nameConstraints !== undefined) {
        const leaf = chain[0] as ParsedCertificate;
        const nc = checkNameConstraints(c.nameConstraints, leaf.uris, leaf.dnsNames);
        if (nc !== undefined) return `x509: ${nc}`;
      }
    }
    return undefined;
  }

  extend(chain: ParsedCertificate[], out: ParsedCertificate[][]): void {
    const child = chain[chain.length - 1] as ParsedCertificate;
    const consider = (cands: ParsedCertificate[], kind: 'intermediate' | 'root'): void => {
      for (const p of cands) {
        if (!bytesEqual(p.rawSubject, child.rawIssuer)) continue;
        if (chain.some((c) => bytesEqual(c.der, p.der))) continue;
        if (this.signatureChecks >= MAX_SIGNATURE_CHECKS) {
          this.lastError = 'x509: signature check attempts limit reached while verifying certificate chain';
          return;
        }
        this.signatureChecks++;
        let ok = false;
        try {
          ok = child.node.verify(p.publicKey);
        } catch {
          ok = false;
        }
        if (!ok) {
          this.lastError = 'x509: certificate signed by unknown authority (signature verification failed)';
          continue;
        }
        const next = [...chain, p];
        const err = this.checkCert(p, kind, next);
        if (err !== undefined) {
          this.lastError = err;
          continue;
        }
        if (kind === 'root') out.push(next);
        else if (next.length < MAX_CHAIN_LENGTH) this.extend(next, out);
      }
    };
    consider(this.roots, 'root');
    consider(this.intermediates, 'intermediate');
  }
}
