import { SpiffeError } from '../errors.ts';
import type { TrustDomain } from '../id/trust-domain.ts';
import type { JwtBundle } from './jwt-bundle.ts';
import type { JwtBundleSource, X509BundleSource } from './source.ts';
import type { X509Bundle } from './x509-bundle.ts';

/** X.509 bundles of several trust domains, one per trust domain. */
export class X509BundleSet implements X509BundleSource {
  #bundles = new Map<string, X509Bundle>();

  constructor(bundles: Iterable<X509Bundle> = []) {
    for (const b of bundles) this.add(b);
  }

  /** Adds or replaces the bundle of `bundle.trustDomain`. */
  add(bundle: X509Bundle): void {
    this.#bundles.set(bundle.trustDomain.name, bundle);
  }

  get(td: TrustDomain): X509Bundle | undefined {
    return this.#bundles.get(td.name);
  }

  has(td: TrustDomain): boolean {
    return this.#bundles.has(td.name);
  }

  remove(td: TrustDomain): void {
    this.#bundles.delete(td.name);
  }

  /** The bundles sorted by trust domain name. */
  bundles(): X509Bundle[] {
    return [...this.#bundles.values()].sort((a, b) => (a.trustDomain.name < b.trustDomain.name ? -1 : 1));
  }

  get size(): number {
    return this.#bundles.size;
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    const b = this.#bundles.get(td.name);
    if (b === undefined) {
      throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `x509bundle: no X.509 bundle for trust domain "${td.name}"`);
    }
    return b;
  }
}

/** JWT bundles of several trust domains, one per trust domain. */
export class JwtBundleSet implements JwtBundleSource {
  #bundles = new Map<string, JwtBundle>();

  constructor(bundles: Iterable<JwtBundle> = []) {
    for (const b of bundles) this.add(b);
  }

  add(bundle: JwtBundle): void {
    this.#bundles.set(bundle.trustDomain.name, bundle);
  }

  get(td: TrustDomain): JwtBundle | undefined {
    return this.#bundles.get(td.name);
  }

  has(td: TrustDomain): boolean {
    return this.#bundles.has(td.name);
  }

  remove(td: TrustDomain): void {
    this.#bundles.delete(td.name);
  }

  bundles(): JwtBundle[] {
    return [...this.#bundles.values()].sort((a, b) => (a.trustDomain.name < b.trustDomain.name ? -1 : 1));
  }

  get size(): number {
    return this.#bundles.size;
  }

  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    const b = this.#bundles.get(td.name);
    if (b === undefined) {
      throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `jwtbundle: no JWT bundle for trust domain "${td.name}"`);
    }
    return b;
  }
}
