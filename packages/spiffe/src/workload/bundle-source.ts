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
import { WorkloadApiClient, type WorkloadApiError } from './client.ts';
import { startWatch } from './watch-state.ts';

export interface BundleSourceOptions {
  readonly client?: WorkloadApiClient;
  readonly address?: string;
  readonly signal?: AbortSignal;
  readonly onError?: (err: WorkloadApiError) => void;
}

export class BundleSource implements X509BundleSource, JwtBundleSource {
  #x509: X509BundleSet | undefined;
  #jwt: JwtBundleSet | undefined;
  readonly #client: WorkloadApiClient;
  readonly #ownsClient: boolean;
  readonly #stop = new AbortController();
  #done: Promise<unknown> = Promise.resolve();

  private constructor(opts: BundleSourceOptions) {
    this.#ownsClient = opts.client === undefined;
    this.#client = opts.client ?? new WorkloadApiClient(opts.address === undefined ? {} : { address: opts.address });
  }

  /** Creates the source; resolves once both the X.509 and the JWT bundles have arrived. */
  static async create(opts: BundleSourceOptions = {}): Promise<BundleSource> {
    const src = new BundleSource(opts);
    const signal = opts.signal === undefined ? src.#stop.signal : AbortSignal.any([opts.signal, src.#stop.signal]);
    const x = startWatch<X509BundleSet>((w, s) => src.#client.watchX509Bundles(w, s), (b) => (src.#x509 = b), signal, opts.onError);
    const j = startWatch<JwtBundleSet>((w, s) => src.#client.watchJwtBundles(w, s), (b) => (src.#jwt = b), signal, opts.onError);
    src.#done = Promise.all([x.done, j.done]);
    try {
      await Promise.all([x.ready, j.ready]);
    } catch (e) {
      await src.close();
      throw e;
    }
    return src;
  }

  #check(): void {
    if (this.#stop.signal.aborted) throw new SpiffeError('ERR_WORKLOAD_API', 'bundlesource: source is closed');
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    this.#check();
    const b = this.#x509?.get(td);
    if (b === undefined) throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `bundlesource: no X.509 bundle for trust domain "${td.name}"`);
    return b;
  }

  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    this.#check();
    const b = this.#jwt?.get(td);
    if (b === undefined) throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `bundlesource: no JWT bundle for trust domain "${td.name}"`);
    return b;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    if (this.#ownsClient) this.#client.close();
    await this.#done;
  }
}
