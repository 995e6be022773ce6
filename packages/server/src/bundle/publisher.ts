import { jwtAuthorityToWire, untilAborted, type Logger, type Task } from '@ztwim/core';
import type { TrustDomain } from '@ztwim/spiffe';
import type { DataStore } from '../datastore/datastore.ts';
import type { CaBundle } from '../ca/manager.ts';

/** The default refresh hint (seconds) of a bundle published for the first time. */
const DEFAULT_REFRESH_HINT_S = 300;

/**
 * Publishes the CA's trust bundle (X.509 authorities and JWT keys) into the datastore, where the
 * Bundle API, agents and federation read it; keeps the refresh hint already stored.
 */
export class BundlePublisher {
  readonly #ds: DataStore;
  readonly #td: TrustDomain;
  readonly #log: Logger;
  /** Publications run one after another, so an older bundle never overwrites a newer one. */
  #queue: Promise<void> = Promise.resolve();
  readonly #unsubscribe: () => void;
  readonly #afterUpdate: (() => Promise<void>) | undefined;

  /** Subscribes to the CA's bundle updates at once, so none is missed before run() starts. */
  constructor(deps: {
    dataStore: DataStore;
    trustDomain: TrustDomain;
    log: Logger;
    ca: { onBundleUpdate(listener: (b: CaBundle) => void): () => void };
    /** Runs after each bundle the CA announces is published (the k8sbundle notifier). */
    afterUpdate?: () => Promise<void>;
  }) {
    this.#ds = deps.dataStore;
    this.#afterUpdate = deps.afterUpdate;
    this.#td = deps.trustDomain;
    this.#log = deps.log;
    this.#unsubscribe = deps.ca.onBundleUpdate((b) => {
      this.publish(b)
        .then(() => this.#afterUpdate?.())
        .catch((e: unknown) => this.#log.error({ error: (e as Error).message }, 'Failed to publish the trust bundle'));
    });
  }

  publish(b: CaBundle): Promise<void> {
    const run = this.#queue.then(() => this.#write(b));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Publishes every bundle the CA announces until the signal aborts, then lets the last write land. */
  run(): Task {
    return async (signal) => {
      try {
        await untilAborted(signal);
      } finally {
        this.#unsubscribe();
      }
      await this.#queue;
    };
  }

  async #write(b: CaBundle): Promise<void> {
    const current = await this.#ds.getBundle(this.#td.name);
    await this.#ds.setBundle({
      trustDomain: this.#td.name,
      x509Authorities: b.x509Authorities.map((asn1) => ({ asn1, tainted: false })),
      jwtAuthorities: b.jwtAuthorities.map((k) => {
        const w = jwtAuthorityToWire(k);
        return { ...w, expiresAt: Number(w.expiresAt) };
      }),
      refreshHint: current?.refreshHint ?? DEFAULT_REFRESH_HINT_S,
    });
  }
}
