// An informer's in-memory copy of a resource: objects by `namespace/name` (objectKey) and
// optional indexes (e.g. pods by spec.nodeName) kept in step on every change.
import { objectKey, type KubeObject } from './objects.ts';
import { internal } from '@ztwim/core';

/** The index values of an object (none: not in that index). */
export type IndexFunc<T extends KubeObject> = (object: T) => readonly string[];

/** client-go's namespace index. */
export const byNamespace: IndexFunc<KubeObject> = (o) => [o.metadata.namespace ?? ''];

export class ObjectStore<T extends KubeObject> {
  readonly #items = new Map<string, T>();
  readonly #indexers: ReadonlyMap<string, IndexFunc<T>>;
  /** index name → value → keys */
  readonly #indexes = new Map<string, Map<string, Set<string>>>();

  constructor(indexers: Readonly<Record<string, IndexFunc<T>>> = {}) {
    this.#indexers = new Map(Object.entries(indexers));
    for (const name of this.#indexers.keys()) this.#indexes.set(name, new Map());
  }

  get size(): number {
    return this.#items.size;
  }

  get(key: string): T | undefined {
    return this.#items.get(key);
  }

  /** By namespace and name ('' or no namespace for cluster-scoped objects). */
  getByName(namespace: string | undefined, name: string): T | undefined {
    return this.#items.get(namespace === undefined || namespace === '' ? name : `${namespace}/${name}`);
  }

  keys(): IterableIterator<string> {
    return this.#items.keys();
  }

  list(): T[] {
    return [...this.#items.values()];
  }

  /** Objects whose index `name` has `value`; throws for an index that was not declared. */
  byIndex(name: string, value: string): T[] {
    const index = this.#indexes.get(name);
    if (index === undefined) throw internal(`k8s: no index "${name}" in this store`);
    const out: T[] = [];
    for (const k of index.get(value) ?? []) {
      const o = this.#items.get(k);
      if (o !== undefined) out.push(o);
    }
    return out;
  }

  /** Inserts or replaces; returns the object it replaced. */
  upsert(object: T): T | undefined {
    const key = objectKey(object);
    const old = this.#items.get(key);
    if (old !== undefined) this.#unindex(key, old);
    this.#items.set(key, object);
    this.#index(key, object);
    return old;
  }

  /** Removes by key; returns what was stored. */
  remove(key: string): T | undefined {
    const old = this.#items.get(key);
    if (old === undefined) return undefined;
    this.#unindex(key, old);
    this.#items.delete(key);
    return old;
  }

  #index(key: string, object: T): void {
    for (const [name, fn] of this.#indexers) {
      const index = this.#indexes.get(name)!;
      for (const v of fn(object)) {
        let keys = index.get(v);
        if (keys === undefined) index.set(v, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  #unindex(key: string, object: T): void {
    for (const [name, fn] of this.#indexers) {
      const index = this.#indexes.get(name)!;
      for (const v of fn(object)) {
        const keys = index.get(v);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(v);
      }
    }
  }
}
