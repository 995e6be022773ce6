// An informer as client-go's reflector + store + processor: list (in pages) then watch from the
// list's resourceVersion with bookmarks; a 410 Gone (resourceVersion expired) lists again; a lost
// apiserver is retried with capped exponential backoff and jitter, resuming the watch where it
// stopped; a periodic resync re-delivers the store as updates without listing. Handlers run in
// event order; a handler that throws is logged and does not stop the others.
import { cryptoRandom, silentLogger, systemClock, ZtwimError, type Clock, type Logger, type Random } from '@ztwim/core';
import { Backoff, unitInterval } from './backoff.ts';
import { ObjectStore, type IndexFunc } from './object-store.ts';
import { objectKey, type KubeObject, type WatchEvent } from './objects.ts';
import type { ResourceClient } from './resource-client.ts';
import type { ResourceRef } from './resource-ref.ts';

export interface InformerHandlers<T extends KubeObject> {
  /** A new object; `initialList` while the first list is delivered. */
  onAdd?(object: T, initialList: boolean): void;
  /** A changed object, or the same object twice on a resync (compare resourceVersions to tell). */
  onUpdate?(oldObject: T, newObject: T): void;
  /** A deleted object: its last state (from the DELETED event, or the store when a relist found it gone). */
  onDelete?(object: T): void;
}

/** The calls an informer makes (a ResourceClient; tests hand it a fake). */
export type ListWatcher = Pick<ResourceClient, 'description' | 'listPages' | 'watch'>;

export interface InformerOptions<T extends KubeObject> {
  readonly client: ListWatcher;
  readonly resource: ResourceRef;
  /** Watch one namespace (default: all namespaces, or a cluster-scoped resource). */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Objects per list page (default 500): no single answer to parse is larger than a page. */
  readonly pageSize?: number;
  /** Re-deliver every stored object as onUpdate(o, o) this often (default 0: never). */
  readonly resyncMs?: number;
  readonly indexers?: Readonly<Record<string, IndexFunc<T>>>;
  /**
   * Applied to every object before it is stored and delivered (client-go's TransformFunc): drop
   * what the handlers never read (managedFields, big annotations) to keep the store small.
   */
  readonly transform?: (object: T) => T;
  /** Backoff when the apiserver is away (default 800 ms doubling to 30 s). */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Watch timeoutSeconds is drawn from [min, 2*min) (default 300, as client-go). */
  readonly minWatchTimeoutSeconds?: number;
  /** A watch that has sent nothing for this long is dropped and resumed (default: its timeout + 30 s). */
  readonly watchIdleTimeoutMs?: number;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: Logger;
}

/** What the informer has done so far (tests and metrics). */
export interface InformerStats {
  /** Complete lists (the first, and each relist). */
  readonly lists: number;
  /** Relists because the watch's resourceVersion had expired (410 Gone). */
  readonly relistsOnGone: number;
  /** Watches opened. */
  readonly watches: number;
  /** Failures retried after a backoff. */
  readonly retries: number;
  readonly resyncs: number;
}

/** A watch that ends this soon with nothing delivered counts as a failure (no tight reconnect loop). */
const SHORT_WATCH_MS = 1000;

export class Informer<T extends KubeObject = KubeObject> {
  readonly store: ObjectStore<T>;
  readonly #o: InformerOptions<T>;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #log: Logger;
  readonly #handlers = new Set<InformerHandlers<T>>();
  readonly #backoff: Backoff;
  #synced = false;
  #syncWaiters: Array<() => void> = [];
  #resourceVersion: string | undefined;
  #running = false;
  #stats = { lists: 0, relistsOnGone: 0, watches: 0, retries: 0, resyncs: 0 };

  constructor(options: InformerOptions<T>) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? cryptoRandom;
    this.#log = options.logger ?? silentLogger();
    this.store = new ObjectStore<T>(options.indexers);
    this.#backoff = new Backoff({
      random: this.#random,
      ...(options.backoffInitialMs === undefined ? {} : { initialMs: options.backoffInitialMs }),
      ...(options.backoffMaxMs === undefined ? {} : { maxMs: options.backoffMaxMs }),
    });
  }

  /** Adds handlers (a late one is given the stored objects as adds first); returns their removal. */
  addHandlers(handlers: InformerHandlers<T>): () => void {
    this.#handlers.add(handlers);
    if (this.#synced) for (const o of this.store.list()) this.#call(handlers, 'onAdd', () => handlers.onAdd?.(o, false));
    return () => this.#handlers.delete(handlers);
  }

  /** True once the first list is in the store (and delivered). */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves when the first list is in; rejects with the signal's reason when it aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal?.reason);
      if (signal?.aborted === true) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** The resourceVersion the informer has seen up to. */
  get resourceVersion(): string | undefined {
    return this.#resourceVersion;
  }

  get stats(): InformerStats {
    return { ...this.#stats };
  }

  /** Lists and watches until the signal aborts; resolves then. Runs once per informer. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new ZtwimError('ERR_FAILED_PRECONDITION', 'k8s: this informer is already running');
    this.#running = true;
    const stopResync = this.#startResync(signal);
    let mustList = true;
    try {
      while (!signal.aborted) {
        try {
          if (mustList) {
            await this.#list(signal);
            mustList = false;
            this.#backoff.reset();
          }
          const started = this.#clock.nowMs();
          const delivered = await this.#watch(signal);
          if (delivered > 0 || this.#clock.nowMs() - started >= SHORT_WATCH_MS) {
            this.#backoff.reset();
            continue;
          }
          if (signal.aborted) break;
          throw new ZtwimError('ERR_UNAVAILABLE', `k8s ${this.#o.client.description}: watch ${this.#o.resource.resource} ended at once`);
        } catch (e) {
          if (signal.aborted) break;
          if (e instanceof ZtwimError && e.code === 'ERR_GONE') {
            // The resourceVersion (of the watch, or of a list's continue token) expired: list afresh.
            this.#log.info({ resource: this.#o.resource.resource, resource_version: this.#resourceVersion }, 'k8s: Resource version expired; listing again');
            this.#stats.relistsOnGone++;
            mustList = true;
            this.#resourceVersion = undefined;
            continue;
          }
          const delayMs = this.#backoff.next();
          this.#stats.retries++;
          this.#log.warn({ err: e, resource: this.#o.resource.resource, retry_in_ms: delayMs }, 'k8s: List/watch failed; retrying');
          try {
            await this.#clock.sleep(delayMs, signal);
          } catch {
            break;
          }
        }
      }
    } finally {
      stopResync();
      this.#running = false;
    }
  }

  async #list(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, T>();
    let rv: string | undefined;
    for await (const page of this.#o.client.listPages<T>(this.#o.resource, {
      limit: this.#o.pageSize ?? 500,
      signal,
      ...(this.#o.namespace === undefined ? {} : { namespace: this.#o.namespace }),
      ...(this.#o.labelSelector === undefined ? {} : { labelSelector: this.#o.labelSelector }),
      ...(this.#o.fieldSelector === undefined ? {} : { fieldSelector: this.#o.fieldSelector }),
    })) {
      for (const item of page.items) fresh.set(objectKey(item), this.#transform(item));
      rv = page.metadata.resourceVersion;
    }
    if (signal.aborted) return;
    this.#stats.lists++;
    const initial = !this.#synced;
    // Replace the store: adds and updates in list order, then deletes of what is gone.
    for (const item of fresh.values()) {
      const old = this.store.upsert(item);
      if (old === undefined) this.#emit('onAdd', (h) => h.onAdd?.(item, initial));
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.#emit('onUpdate', (h) => h.onUpdate?.(old, item));
    }
    for (const key of [...this.store.keys()]) {
      if (fresh.has(key)) continue;
      const old = this.store.remove(key);
      if (old !== undefined) this.#emit('onDelete', (h) => h.onDelete?.(old));
    }
    this.#resourceVersion = rv;
    if (!this.#synced) {
      this.#synced = true;
      const waiters = this.#syncWaiters;
      this.#syncWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** One watch from the current resourceVersion; the number of events it delivered. */
  async #watch(signal: AbortSignal): Promise<number> {
    const min = this.#o.minWatchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.floor(min * (1 + unitInterval(this.#random)));
    this.#stats.watches++;
    let n = 0;
    for await (const ev of this.#o.client.watch<T>(this.#o.resource, {
      allowWatchBookmarks: true,
      timeoutSeconds,
      signal,
      ...(this.#resourceVersion === undefined ? {} : { resourceVersion: this.#resourceVersion }),
      ...(this.#o.namespace === undefined ? {} : { namespace: this.#o.namespace }),
      ...(this.#o.labelSelector === undefined ? {} : { labelSelector: this.#o.labelSelector }),
      ...(this.#o.fieldSelector === undefined ? {} : { fieldSelector: this.#o.fieldSelector }),
      ...(this.#o.watchIdleTimeoutMs === undefined ? {} : { idleTimeoutMs: this.#o.watchIdleTimeoutMs }),
    })) {
      n++;
      this.#apply(ev);
    }
    return n;
  }

  #apply(ev: WatchEvent<T>): void {
    const rv = ev.object.metadata.resourceVersion;
    if (ev.type === 'BOOKMARK') {
      if (rv !== undefined) this.#resourceVersion = rv;
      return;
    }
    const obj = this.#transform(ev.object);
    if (ev.type === 'DELETED') {
      const old = this.store.remove(objectKey(obj));
      if (old !== undefined) this.#emit('onDelete', (h) => h.onDelete?.(obj));
    } else {
      const old = this.store.upsert(obj);
      if (old === undefined) this.#emit('onAdd', (h) => h.onAdd?.(obj, false));
      else this.#emit('onUpdate', (h) => h.onUpdate?.(old, obj));
    }
    if (rv !== undefined) this.#resourceVersion = rv;
  }

  #transform(object: T): T {
    return this.#o.transform === undefined ? object : this.#o.transform(object);
  }

  #startResync(signal: AbortSignal): () => void {
    const every = this.#o.resyncMs ?? 0;
    if (every <= 0) return () => undefined;
    let cancel = (): void => undefined;
    const arm = (): void => {
      cancel = this.#clock.setTimer(every, () => {
        if (signal.aborted) return;
        if (this.#synced) {
          this.#stats.resyncs++;
          for (const o of this.store.list()) this.#emit('onUpdate', (h) => h.onUpdate?.(o, o));
        }
        arm();
      });
    };
    arm();
    return () => cancel();
  }

  #emit(what: string, fn: (h: InformerHandlers<T>) => void): void {
    for (const h of this.#handlers) this.#call(h, what, () => fn(h));
  }

  #call(_h: InformerHandlers<T>, what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#log.error({ err: e, resource: this.#o.resource.resource, handler: what }, 'k8s: Informer handler failed');
    }
  }
}
