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
import { WorkloadApiClient, type JwtSvidParams, type WorkloadApiError } from './client.ts';
import { startWatch } from './watch-state.ts';

export interface JwtSourceOptions {
  /** A client to use (not closed by the source); otherwise one is created for `address`. */
  readonly client?: WorkloadApiClient;
  readonly address?: string;
  readonly signal?: AbortSignal;
  readonly onError?: (err: WorkloadApiError) => void;
}

export class JwtSource implements JwtBundleSource {
  #bundles: JwtBundleSet | undefined;
  readonly #client: WorkloadApiClient;
  readonly #ownsClient: boolean;
  readonly #stop = new AbortController();
  readonly #listeners = new Set<(b: JwtBundleSet) => void>();
  #done: Promise<void> = Promise.resolve();

  private constructor(opts: JwtSourceOptions) {
    this.#ownsClient = opts.client === undefined;
    this.#client = opts.client ?? new WorkloadApiClient(opts.address === undefined ? {} : { address: opts.address });
  }

  /** Creates the source; resolves after the first JWT bundle update. */
  static async create(opts: JwtSourceOptions = {}): Promise<JwtSource> {
    const src = new JwtSource(opts);
    const signal = opts.signal === undefined ? src.#stop.signal : AbortSignal.any([opts.signal, src.#stop.signal]);
    const h = startWatch<JwtBundleSet>(
      (w, s) => src.#client.watchJwtBundles(w, s),
      (b) => {
        src.#bundles = b;
        for (const l of src.#listeners) l(b);
      },
      signal,
      opts.onError,
    );
    src.#done = h.done;
    try {
      await h.ready;
    } catch (e) {
      await src.close();
      throw e;
    }
    return src;
  }

  #check(): void {
    if (this.#stop.signal.aborted) throw new SpiffeError('ERR_WORKLOAD_API', 'jwtsource: source is closed');
  }

  /** Fetches a JWT-SVID from the Workload API (not cached). */
  async fetchJwtSvid(params: JwtSvidParams): Promise<JwtSvid> {
    this.#check();
    return this.#client.fetchJwtSvid(params);
  }

  async fetchJwtSvids(params: JwtSvidParams): Promise<JwtSvid[]> {
    this.#check();
    return this.#client.fetchJwtSvids(params);
  }

  /** The current JWT bundle of `td`; throws ERR_BUNDLE_NOT_FOUND when absent. */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    this.#check();
    const b = this.#bundles?.get(td);
    if (b === undefined) throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `jwtsource: no JWT bundle for trust domain "${td.name}"`);
    return b;
  }

  onUpdate(cb: (b: JwtBundleSet) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  async close(): Promise<void> {
    this.#stop.abort();
    this.#listeners.clear();
    if (this.#ownsClient) this.#client.close();
    await this.#done;
  }
}
