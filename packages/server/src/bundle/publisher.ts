import { jwtAuthorityToWire, type Clock } from '@ztwim/core';
import type { TrustDomain } from '@ztwim/spiffe';
import type { DataStore } from '../datastore/datastore.ts';
import type { CaBundle } from '../ca/manager.ts';

/** The default refresh hint (seconds) of a bundle published for the first time. */
const DEFAULT_REFRESH_HINT_S = 300;

/**
 * Publishes the CA's trust bundle (X.509 authorities and JWT keys) into the datastore, where the
 * Bundle API, agents, federation and the other servers read it. Several servers share one bundle
 * (docs/ha.md), so a server never replaces it: it appends its own keys (SPIRE's AppendBundle) and
 * prunes the expired ones (SPIRE's PruneBundle), each in one transaction. Keeps the refresh hint.
 */
export class BundlePublisher {
  readonly #ds: Pick<DataStore, 'getBundle' | 'appendBundle' | 'pruneBundle'>;
  readonly #td: TrustDomain;
  readonly #clock: Clock;
  /** Publications run one after another. */
  #queue: Promise<void> = Promise.resolve();
  readonly #afterUpdate: (() => Promise<void>) | undefined;

  constructor(deps: {
    dataStore: Pick<DataStore, 'getBundle' | 'appendBundle' | 'pruneBundle'>;
    trustDomain: TrustDomain;
    clock: Clock;
    /** Runs after a publication that changed the stored bundle (the k8sbundle notifier). */
    afterUpdate?: () => Promise<void>;
  }) {
    this.#ds = deps.dataStore;
    this.#afterUpdate = deps.afterUpdate;
    this.#td = deps.trustDomain;
    this.#clock = deps.clock;
  }

  /** Stores the CA's keys in the shared bundle; resolves once they are committed. */
  publish(b: CaBundle): Promise<void> {
    const run = this.#queue.then(() => this.#write(b));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #write(b: CaBundle): Promise<void> {
    const current = await this.#ds.getBundle(this.#td.name);
    const stored = await this.#ds.appendBundle({
      trustDomain: this.#td.name,
      x509Authorities: b.x509Authorities.map((asn1) => ({ asn1, tainted: false })),
      jwtAuthorities: b.jwtAuthorities.map((k) => {
        const w = jwtAuthorityToWire(k);
        return { ...w, expiresAt: Number(w.expiresAt) };
      }),
      refreshHint: current?.refreshHint ?? DEFAULT_REFRESH_HINT_S,
    });
    const pruned = await this.#ds.pruneBundle(this.#td.name, this.#clock.nowMs());
    if (pruned || stored.sequenceNumber !== current?.sequenceNumber) await this.#afterUpdate?.();
  }
}
