/**
 * X509Source: the workload's current X509-SVID and X.509 bundles, kept up to date from a
 * Workload API watch (go-spiffe `workloadapi.X509Source`).
 */
import { SpiffeError } from '../errors.ts';
import type { TrustDomain } from '../id/trust-domain.ts';
import type { X509Bundle } from '../bundle/x509-bundle.ts';
import type { X509BundleSource } from '../bundle/source.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import { verifyX509Svid } from '../svid/verify.ts';
import type { X509Context } from './client.ts';
import { SourceLifecycle, type SourceLifecycleOptions } from './source-lifecycle.ts';

/** Chooses the SVID to present among the workload's SVIDs (default: the first). */
export type X509SvidPicker = (svids: readonly X509Svid[]) => X509Svid;

export interface X509SourceOptions extends SourceLifecycleOptions {
  readonly picker?: X509SvidPicker;
  /** The clock that updates are verified with (default the system clock). */
  readonly now?: () => Date;
}

/**
 * Every X509-SVID of an update must verify before the update is adopted: chain and signatures
 * to the bundle of its trust domain sent in the same response, every certificate valid at
 * `now`, a leaf ID with a path. (The client's parser has already checked that each `spiffe_id`
 * equals its certificate's URI SAN and that the private key matches the certificate.)
 */
function verifyContext(ctx: X509Context, now: Date): void {
  for (const svid of ctx.svids) verifyX509Svid(svid.certificates, ctx.bundles, { now });
}

export class X509Source implements X509BundleSource {
  #context: X509Context | undefined;
  readonly #picker: X509SvidPicker;
  readonly #now: () => Date;
  readonly #life: SourceLifecycle<X509Context>;

  private constructor(opts: X509SourceOptions) {
    this.#picker = opts.picker ?? ((svids) => svids[0] as X509Svid);
    this.#now = opts.now ?? (() => new Date());
    this.#life = new SourceLifecycle('x509source', opts, () => (this.#context = undefined));
  }

  /** Creates the source; resolves after the first X.509 context that verifies. */
  static async create(opts: X509SourceOptions = {}): Promise<X509Source> {
    const src = new X509Source(opts);
    const life = src.#life;
    await life.ready([
      life.watch<X509Context>(
        (w, s) => life.client.watchX509Context(w, s),
        (ctx) => src.#adopt(ctx),
      ),
    ]);
    return src;
  }

  #adopt(ctx: X509Context): void {
    verifyContext(ctx, this.#now());
    this.#context = ctx;
    this.#life.emit(ctx);
  }

  #ctx(): X509Context {
    this.#life.check();
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
    return this.#ctx()
      .bundles.bundles()
      .flatMap((b) => b.authorities());
  }

  /** Calls `cb` on every adopted update (SVID rotation, bundle change); returns an unsubscribe function. */
  onUpdate(cb: (ctx: X509Context) => void): () => void {
    return this.#life.onUpdate(cb);
  }

  /** Stops watching (and closes the client if the source created it). */
  async close(): Promise<void> {
    await this.#life.close();
  }
}
