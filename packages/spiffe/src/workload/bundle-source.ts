/**
 * BundleSource: X.509 and JWT bundles kept up to date from Workload API watches
 * (go-spiffe `workloadapi.BundleSource`).
 */
import { SpiffeError } from '../errors.ts';
import type { TrustDomain } from '../id/trust-domain.ts';
import type { X509Bundle } from '../bundle/x509-bundle.ts';
import type { JwtBundle } from '../bundle/jwt-bundle.ts';
import type { JwtBundleSet, X509BundleSet } from '../bundle/set.ts';
import type { JwtBundleSource, X509BundleSource } from '../bundle/source.ts';
import { SourceLifecycle, type SourceLifecycleOptions } from './source-lifecycle.ts';

export type BundleSourceOptions = SourceLifecycleOptions;

export class BundleSource implements X509BundleSource, JwtBundleSource {
  #x509: X509BundleSet | undefined;
  #jwt: JwtBundleSet | undefined;
  readonly #life: SourceLifecycle<void>;

  private constructor(opts: BundleSourceOptions) {
    this.#life = new SourceLifecycle('bundlesource', opts, () => {
      this.#x509 = undefined;
      this.#jwt = undefined;
    });
  }

  /** Creates the source; resolves once both the X.509 and the JWT bundles have arrived. */
  static async create(opts: BundleSourceOptions = {}): Promise<BundleSource> {
    const src = new BundleSource(opts);
    const life = src.#life;
    await life.ready([
      life.watch<X509BundleSet>(
        (w, s) => life.client.watchX509Bundles(w, s),
        (b) => {
          src.#x509 = b;
          life.emit();
        },
      ),
      life.watch<JwtBundleSet>(
        (w, s) => life.client.watchJwtBundles(w, s),
        (b) => {
          src.#jwt = b;
          life.emit();
        },
      ),
    ]);
    return src;
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    this.#life.check();
    const b = this.#x509?.get(td);
    if (b === undefined) throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `bundlesource: no X.509 bundle for trust domain "${td.name}"`);
    return b;
  }

  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    this.#life.check();
    const b = this.#jwt?.get(td);
    if (b === undefined) throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `bundlesource: no JWT bundle for trust domain "${td.name}"`);
    return b;
  }

  /** Calls `cb` after every X.509 or JWT bundle update; returns an unsubscribe function. */
  onUpdate(cb: () => void): () => void {
    return this.#life.onUpdate(cb);
  }

  async close(): Promise<void> {
    await this.#life.close();
  }
}
