/**
 * JwtSource: fetches JWT-SVIDs on demand and keeps the JWT bundles up to date from a Workload
 * API watch (go-spiffe `workloadapi.JWTSource`).
 */
import { SpiffeError } from '../errors.ts';
import type { TrustDomain } from '../id/trust-domain.ts';
import type { JwtBundle } from '../bundle/jwt-bundle.ts';
import type { JwtBundleSet } from '../bundle/set.ts';
import type { JwtBundleSource } from '../bundle/source.ts';
import type { JwtSvid } from '../svid/jwt-svid.ts';
import type { JwtSvidParams } from './client.ts';
import { SourceLifecycle, type SourceLifecycleOptions } from './source-lifecycle.ts';

export type JwtSourceOptions = SourceLifecycleOptions;

export class JwtSource implements JwtBundleSource {
  #bundles: JwtBundleSet | undefined;
  readonly #life: SourceLifecycle<JwtBundleSet>;

  private constructor(opts: JwtSourceOptions) {
    this.#life = new SourceLifecycle('jwtsource', opts, () => (this.#bundles = undefined));
  }

  /** Creates the source; resolves after the first JWT bundle update. */
  static async create(opts: JwtSourceOptions = {}): Promise<JwtSource> {
    const src = new JwtSource(opts);
    const life = src.#life;
    await life.ready([
      life.watch<JwtBundleSet>(
        (w, s) => life.client.watchJwtBundles(w, s),
        (b) => {
          src.#bundles = b;
          life.emit(b);
        },
      ),
    ]);
    return src;
  }

  /** Fetches a JWT-SVID from the Workload API (not cached; the agent decides whether one is issued). */
  async fetchJwtSvid(params: JwtSvidParams): Promise<JwtSvid> {
    this.#life.checkOpen();
    return this.#life.client.fetchJwtSvid(params);
  }

  async fetchJwtSvids(params: JwtSvidParams): Promise<JwtSvid[]> {
    this.#life.checkOpen();
    return this.#life.client.fetchJwtSvids(params);
  }

  /** The current JWT bundle of `td`; throws ERR_BUNDLE_NOT_FOUND when absent. */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    this.#life.check();
    const b = this.#bundles?.get(td);
    if (b === undefined) throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `jwtsource: no JWT bundle for trust domain "${td.name}"`);
    return b;
  }

  /** Calls `cb` on every bundle update; returns an unsubscribe function. */
  onUpdate(cb: (b: JwtBundleSet) => void): () => void {
    return this.#life.onUpdate(cb);
  }

  async close(): Promise<void> {
    await this.#life.close();
  }
}
