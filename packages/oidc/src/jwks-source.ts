import type { Clock } from '@ztwim/core';
import { systemClock } from '@ztwim/core';
import type { JsonWebKey } from './jwk.ts';

/** The current JWT authority keys and when they last changed. */
export interface KeySetSnapshot {
  readonly keys: readonly JsonWebKey[];
  readonly updatedAt: Date;
}

export type Unsubscribe = () => void;

/**
 * Where the provider gets its keys. current() is undefined until the first key set is
 * known (the provider then answers /keys with 500 and is not ready). Listeners are called
 * after every change, synchronously, with the new snapshot.
 */
export interface JwksSource {
  current(): KeySetSnapshot | undefined;
  onChange(listener: (snapshot: KeySetSnapshot) => void): Unsubscribe;
  /**
   * The source's background work (a poll loop, the Workload API stream) as a task: it reads keys
   * until the signal aborts or close() is called. The provider runs it in its task list; a source
   * whose keys are pushed to it has none.
   */
  run?(signal: AbortSignal): Promise<void>;
  /** Stops the background work and releases what the source holds (connections). Optional. */
  close?(): void;
}

/** Listener bookkeeping shared by the sources. */
export class Listeners<T> {
  private readonly set = new Set<(v: T) => void>();

  add(fn: (v: T) => void): Unsubscribe {
    this.set.add(fn);
    return () => {
      this.set.delete(fn);
    };
  }

  emit(v: T): void {
    for (const fn of [...this.set]) fn(v);
  }
}

function sameKeys(a: readonly JsonWebKey[], b: readonly JsonWebKey[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A key set set by the caller. set() replaces the keys (a no-op when nothing changed);
 * listeners see the change at once.
 */
export class StaticJwksSource implements JwksSource {
  private snapshot: KeySetSnapshot | undefined;
  private readonly listeners = new Listeners<KeySetSnapshot>();
  private readonly clock: Clock;

  constructor(keys?: readonly JsonWebKey[], options: { clock?: Clock } = {}) {
    this.clock = options.clock ?? systemClock;
    if (keys !== undefined) this.snapshot = { keys: [...keys], updatedAt: this.clock.now() };
  }

  current(): KeySetSnapshot | undefined {
    return this.snapshot;
  }

  onChange(listener: (snapshot: KeySetSnapshot) => void): Unsubscribe {
    return this.listeners.add(listener);
  }

  /** Replaces the key set; returns whether it changed. */
  set(keys: readonly JsonWebKey[]): boolean {
    if (this.snapshot !== undefined && sameKeys(this.snapshot.keys, keys)) return false;
    const snap = { keys: [...keys], updatedAt: this.clock.now() };
    this.snapshot = snap;
    this.listeners.emit(snap);
    return true;
  }
}

/**
 * A source fed by a subscription the caller owns, e.g. the agent's Workload API
 * FetchJWTBundles stream or the server API. `subscribe(push)` is called once at
 * construction; each push(keys) publishes a key set. The function it returns (if any) is
 * called by close().
 */
export class CallbackJwksSource implements JwksSource {
  private readonly inner: StaticJwksSource;
  private readonly stop: (() => void) | undefined;

  constructor(subscribe: (push: (keys: readonly JsonWebKey[]) => void) => (() => void) | void, options: { clock?: Clock } = {}) {
    this.inner = new StaticJwksSource(undefined, options);
    const r = subscribe((keys) => {
      this.inner.set(keys);
    });
    this.stop = typeof r === 'function' ? r : undefined;
  }

  current(): KeySetSnapshot | undefined {
    return this.inner.current();
  }

  onChange(listener: (snapshot: KeySetSnapshot) => void): Unsubscribe {
    return this.inner.onChange(listener);
  }

  close(): void {
    this.stop?.();
  }
}
