/**
 * X509Source: the workload's current X509-SVID and X.509 bundles, kept up to date from a
 * Workload API watch (go-spiffe `workloadapi.X509Source`).
 */
import { SpiffeError } from '../errors.ts';
import type { TrustDomain } from '../id/trust-domain.ts';
import type { X509Bundle } from '../bundle/x509-bundle.ts';
import type { X509BundleSource } from '../bundle/source.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import { WorkloadApiClient, type WorkloadApiError, type X509Context } from './client.ts';
import { startWatch } from './watch-state.ts';

/** Chooses the SVID to present among the workload's SVIDs (default: the first). */
export type X509SvidPicker = (svids: readonly X509Svid[]) => X509Svid;

export interface X509SourceOptions {
  /** A client to use (not closed by the source); otherwise one is created for `address`. */
  readonly client?: WorkloadApiClient;
  readonly address?: string;
  readonly picker?: X509SvidPicker;
  /** Aborting it before the first update rejects `create`; later it closes the source. */
  readonly signal?: AbortSignal;
  /** Watch errors (connection failures, discarded messages). */
  readonly onError?: (err: WorkloadApiError) => void;
}

export class X509Source implements X509BundleSource {
  #context: X509Context | undefined;
  readonly #picker: X509SvidPicker;
  readonly #client: WorkloadApiClient;
  readonly #ownsClient: boolean;
  readonly #stop = new AbortController();
  readonly #listeners = new Set<(ctx: X509Context) => void>();
  #done: Promise<void> = Promise.resolve();

  private constructor(opts: X509SourceOptions) {
    this.#picker = opts.picker ?? ((svids) => svids[0] as X509Svid);
    this.#ownsClient = opts.client === undefined;
    this.#client = opts.client ?? new WorkloadApiClient(opts.address === undefined ? {} : { address: opts.address });
  }

  /** Creates the source; resolves after the first X.509 context arrives. */
  static async create(opts: X509SourceOptions = {}): Promise<X509Source> {
    const src = new X509Source(opts);
    const signal = opts.signal === undefined ? src.#stop.signal : AbortSignal.any([opts.signal, src.#stop.signal]);
    const h = startWatch<X509Context>((w, s) => src.#client.watchX509Context(w, s), (ctx) => src.#update(ctx), signal, opts.onError);
    src.#done = h.done;
    try {
      await h.ready;
    } catch (e) {
      await src.close();
      throw e;
    }
    return src;
  }

  #update(ctx: X509Context): void {
    this.#context = ctx;
    for (const l of this.#listeners) {
      try {
        l(ctx);
      } catch {
        // a listener's failure must not stop updates
      }
    }
  }

  #ctx(): X509Context {
    if (this.#stop.signal.aborted) throw new SpiffeError('ERR_WORKLOAD_API', 'x509source: source is closed');
    if (this.#context === undefined) throw new SpiffeError('ERR_WORKLOAD_API', 'x509source: no X.509 context yet');
    return this.#context;
  }

  /** The current default X509-SVID (as chosen by the picker). */
  getX509Svid(): X509Svid {
    return this.#picker(this.#ctx().svids);
  }

  /** All current X509-SVIDs. */
  getX509Svids(): X509Svid[] {
    return [...this.#ctx().svids];
  }

  /** The current bundle of `td`; throws ERR_BUNDLE_NOT_FOUND when absent. */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    const b = this.#ctx().bundles.get(td);
    if (b === undefined) {
      throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `x509source: no X.509 bundle for trust domain "${td.name}"`);
    }
    return b;
  }

  /** Authorities of every trust domain's bundle (DER), for TLS stacks that need one CA list. */
  allAuthorities(): Uint8Array[] {
    return this.#ctx().bundles.bundles().flatMap((b) => b.authorities());
  }

  /** Calls `cb` on every update (SVID rotation, bundle change); returns an unsubscribe function. */
  onUpdate(cb: (ctx: X509Context) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Stops watching (and closes the client if the source created it). */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#listeners.clear();
    if (this.#ownsClient) this.#client.close();
    await this.#done;
  }
}
