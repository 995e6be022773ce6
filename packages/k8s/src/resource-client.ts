// REST calls on any resource (core or named group, namespaced or cluster-scoped) over the one
// KubeTransport: get, list (selectors and paging), create, replace, patch (merge, JSON, strategic,
// server-side apply), delete, the status subresource, watch, and API discovery. Every failure is a
// KubeApiError with a stable code (api-errors.ts).
import { systemClock, ZtwimError, type Clock, internal } from '@ztwim/core';
import { apiError, transportError, watchStatusError, type KubeStatus } from './api-errors.ts';
import type { HttpMethod, KubeTransport } from './kube-transport.ts';
import type { KubeList, KubeObject, WatchEvent } from './objects.ts';
import { groupVersionOf, groupVersionPath, queryOf, resourcePath, type ResourceRef } from './resource-ref.ts';

export interface ListOptions {
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Page size; the answer's metadata.continue fetches the next page. */
  readonly limit?: number;
  readonly continue?: string;
  readonly resourceVersion?: string;
  readonly resourceVersionMatch?: 'Exact' | 'NotOlderThan';
  readonly signal?: AbortSignal;
}

export interface WriteOptions {
  /** Ends the call early (its deadline is otherwise the transport's request timeout). */
  readonly signal?: AbortSignal;
  readonly fieldManager?: string;
  readonly dryRun?: boolean;
  /** Reject (instead of drop) unknown or duplicate fields: `Strict`; the apiserver's default is `Warn`. */
  readonly fieldValidation?: 'Ignore' | 'Warn' | 'Strict';
}

export type PatchType = 'merge' | 'json' | 'strategic';

export interface ApplyOptions {
  /** Required by server-side apply: who owns the fields sent. */
  readonly fieldManager: string;
  /** Take over fields another manager owns (conflicts are otherwise a 409). */
  readonly force?: boolean;
  readonly dryRun?: boolean;
}

export interface DeleteOptions {
  readonly propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  /** Delete only while the object still has this uid / resourceVersion (else 409 Conflict). */
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
  readonly gracePeriodSeconds?: number;
  readonly dryRun?: boolean;
}

export interface WatchOptions {
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Where the watch starts (the list's resourceVersion); unset: the current state as ADDED events. */
  readonly resourceVersion?: string;
  readonly allowWatchBookmarks?: boolean;
  /** The apiserver ends the watch after this long (default 300). */
  readonly timeoutSeconds?: number;
  /** The watch is treated as dead after this long without a byte (default timeoutSeconds + 30 s). */
  readonly idleTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** One resource of a group/version as discovery describes it. */
export interface ApiResource {
  readonly name: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly verbs: readonly string[];
  readonly shortNames?: readonly string[];
}

const PATCH_CONTENT_TYPES: Readonly<Record<PatchType | 'apply', string>> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml', // JSON is YAML: the apiserver takes the object as JSON here
};

export interface ResourceClientOptions {
  readonly clock?: Clock;
}

export class ResourceClient {
  readonly #t: KubeTransport;
  readonly #clock: Clock;
  /** Discovery answers per group/version (a missing group is cached as undefined too). */
  readonly #discovery = new Map<string, Promise<readonly ApiResource[] | undefined>>();

  constructor(transport: KubeTransport, options: ResourceClientOptions = {}) {
    this.#t = transport;
    this.#clock = options.clock ?? systemClock;
  }

  get description(): string {
    return this.#t.description;
  }

  /** The transport underneath (for a KubeClient or another client on the same connection). */
  get transport(): KubeTransport {
    return this.#t;
  }

  async #call<T>(what: string, method: HttpMethod, path: string, body?: unknown, contentType?: string, signal?: AbortSignal): Promise<T> {
    let res: { status: number; text: string };
    try {
      res = await this.#t.request({
        method,
        path,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(contentType === undefined ? {} : { contentType }),
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (e) {
      if (signal?.aborted === true) throw e;
      throw transportError(this.#t.description, what, e);
    }
    if (res.status < 200 || res.status > 299) throw apiError(this.#t.description, what, res.status, res.text);
    try {
      return JSON.parse(res.text) as T;
    } catch (e) {
      throw new ZtwimError('ERR_INTERNAL', `k8s ${this.#t.description}: ${what}: response is not JSON: ${(e as Error).message}`, {
        cause: e,
        fields: { k8s_call: what, http_status: res.status },
      });
    }
  }

  async get<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string, namespace?: string, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.#call<T>(`get ${describe(ref, namespace, name)}`, 'GET', resourcePath(ref, namespace, name), undefined, undefined, options.signal);
  }

  /** One page of a list (all of it without `limit`). */
  async list<T extends KubeObject = KubeObject>(ref: ResourceRef, options: ListOptions = {}): Promise<KubeList<T>> {
    const q = queryOf({
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      limit: options.limit,
      continue: options.continue,
      resourceVersion: options.resourceVersion,
      resourceVersionMatch: options.resourceVersionMatch,
    });
    const list = await this.#call<KubeList<T>>(
      `list ${describe(ref, options.namespace)}`,
      'GET',
      `${resourcePath(ref, options.namespace)}${q}`,
      undefined,
      undefined,
      options.signal,
    );
    return { ...list, metadata: list.metadata ?? {}, items: list.items ?? [] };
  }

  /** Every page of a list, `limit` objects at a time (default 500). */
  async *listPages<T extends KubeObject = KubeObject>(ref: ResourceRef, options: ListOptions = {}): AsyncGenerator<KubeList<T>> {
    let cont: string | undefined = options.continue;
    do {
      const page: KubeList<T> = await this.list<T>(ref, { ...options, limit: options.limit ?? 500, ...(cont === undefined ? {} : { continue: cont }) });
      yield page;
      cont = page.metadata.continue;
    } while (cont !== undefined && cont !== '');
  }

  async create<T extends KubeObject>(ref: ResourceRef, object: T, options: WriteOptions = {}): Promise<T> {
    const ns = object.metadata.namespace;
    return this.#call<T>(
      `create ${describe(ref, ns, object.metadata.name ?? object.metadata.generateName)}`,
      'POST',
      `${resourcePath(ref, ns)}${writeQuery(options)}`,
      withTypeMeta(ref, object),
      undefined,
      options.signal,
    );
  }

  /** PUT the whole object; its metadata.resourceVersion (when set) must be current, else ERR_CONFLICT. */
  async replace<T extends KubeObject>(ref: ResourceRef, object: T, options: WriteOptions = {}): Promise<T> {
    const { name, namespace } = named(object);
    return this.#call<T>(
      `replace ${describe(ref, namespace, name)}`,
      'PUT',
      `${resourcePath(ref, namespace, name)}${writeQuery(options)}`,
      withTypeMeta(ref, object),
      undefined,
      options.signal,
    );
  }

  /** A merge patch (RFC 7386), a JSON patch (RFC 6902, an array of operations) or a strategic merge patch. */
  async patch<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    name: string,
    patch: unknown,
    type: PatchType,
    options: WriteOptions & { namespace?: string } = {},
  ): Promise<T> {
    return this.#patch<T>(ref, name, patch, type, options);
  }

  /**
   * Server-side apply: the object holds the fields this manager owns (apiVersion, kind and
   * metadata.name are required); creates the object when it does not exist.
   */
  async apply<T extends KubeObject>(ref: ResourceRef, object: T, options: ApplyOptions): Promise<T> {
    return this.#apply(ref, object, options);
  }

  /** PUT the status subresource (the object's spec is ignored by the apiserver). */
  async replaceStatus<T extends KubeObject>(ref: ResourceRef, object: T, options: WriteOptions = {}): Promise<T> {
    const { name, namespace } = named(object);
    return this.#call<T>(
      `replace status of ${describe(ref, namespace, name)}`,
      'PUT',
      `${resourcePath(ref, namespace, name, 'status')}${writeQuery(options)}`,
      withTypeMeta(ref, object),
    );
  }

  async patchStatus<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    name: string,
    patch: unknown,
    type: PatchType,
    options: WriteOptions & { namespace?: string } = {},
  ): Promise<T> {
    return this.#patch<T>(ref, name, patch, type, options, 'status');
  }

  /** PATCH of the object or of one of its subresources. */
  #patch<T extends KubeObject>(
    ref: ResourceRef,
    name: string,
    patch: unknown,
    type: PatchType,
    options: WriteOptions & { namespace?: string },
    subresource?: 'status',
  ): Promise<T> {
    return this.#call<T>(
      `patch ${ofSubresource(subresource)}${describe(ref, options.namespace, name)}`,
      'PATCH',
      `${resourcePath(ref, options.namespace, name, subresource)}${writeQuery(options)}`,
      patch,
      PATCH_CONTENT_TYPES[type],
    );
  }

  /** Server-side apply of the status subresource. */
  async applyStatus<T extends KubeObject>(ref: ResourceRef, object: T, options: ApplyOptions): Promise<T> {
    return this.#apply(ref, object, options, 'status');
  }

  /** Server-side apply of the object or of one of its subresources. */
  #apply<T extends KubeObject>(ref: ResourceRef, object: T, options: ApplyOptions, subresource?: 'status'): Promise<T> {
    const { name, namespace } = named(object);
    return this.#call<T>(
      `apply ${ofSubresource(subresource)}${describe(ref, namespace, name)}`,
      'PATCH',
      `${resourcePath(ref, namespace, name, subresource)}${applyQuery(options)}`,
      withTypeMeta(ref, object),
      PATCH_CONTENT_TYPES.apply,
    );
  }

  /**
   * Deletes an object: the answer is the object (when deletion waits for finalizers or for
   * dependents) or the apiserver's Status.
   */
  async delete(ref: ResourceRef, name: string, options: DeleteOptions & { namespace?: string } = {}): Promise<KubeObject | KubeStatus> {
    const body = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      ...(options.propagationPolicy === undefined ? {} : { propagationPolicy: options.propagationPolicy }),
      ...(options.preconditions === undefined ? {} : { preconditions: options.preconditions }),
      ...(options.gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds: options.gracePeriodSeconds }),
      ...(options.dryRun === true ? { dryRun: ['All'] } : {}),
    };
    return this.#call<KubeObject | KubeStatus>(`delete ${describe(ref, options.namespace, name)}`, 'DELETE', resourcePath(ref, options.namespace, name), body);
  }

  /**
   * Watch events from a resourceVersion, as they arrive. Ends when the apiserver ends the watch
   * (timeoutSeconds) or the signal aborts; throws the apiserver's ERROR event (410 Gone: the
   * resourceVersion is too old, list again) or ERR_UNAVAILABLE when the connection breaks or stays
   * idle past idleTimeoutMs. BOOKMARK events carry only metadata.resourceVersion.
   */
  async *watch<T extends KubeObject = KubeObject>(ref: ResourceRef, options: WatchOptions = {}): AsyncGenerator<WatchEvent<T>> {
    const timeoutSeconds = options.timeoutSeconds ?? 300;
    const idleMs = options.idleTimeoutMs ?? (timeoutSeconds + 30) * 1000;
    const what = `watch ${describe(ref, options.namespace)}`;
    const path = `${resourcePath(ref, options.namespace)}${queryOf({
      watch: 1,
      resourceVersion: options.resourceVersion,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      allowWatchBookmarks: options.allowWatchBookmarks === true ? 'true' : undefined,
      timeoutSeconds,
    })}`;
    const local = new AbortController();
    const onOuterAbort = (): void => local.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (options.signal?.aborted === true) local.abort(options.signal.reason);
    let idle = false;
    let cancelIdle = (): void => undefined;
    const armIdle = (): void => {
      cancelIdle();
      cancelIdle = this.#clock.setTimer(idleMs, () => {
        idle = true;
        local.abort();
      });
    };
    try {
      let res;
      try {
        res = await this.#t.stream(path, local.signal);
      } catch (e) {
        if (options.signal?.aborted === true) return;
        throw transportError(this.#t.description, what, e);
      }
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
        const chunks: Buffer[] = [];
        try {
          for await (const c of res) chunks.push(c as Buffer);
        } catch {
          // the status is the error; a cut body only shortens its message
        }
        throw apiError(this.#t.description, what, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
      }
      armIdle();
      let pending = '';
      try {
        for await (const chunk of res) {
          armIdle();
          pending += (chunk as Buffer).toString('utf8');
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line === '') continue;
            const ev = parseEvent(this.#t.description, what, line);
            if (ev.type === 'ERROR') throw watchStatusError(this.#t.description, what, ev.object as KubeStatus);
            yield ev as WatchEvent<T>;
          }
        }
      } catch (e) {
        if (e instanceof ZtwimError) throw e;
        if (options.signal?.aborted === true) return;
        throw transportError(this.#t.description, what, idle ? internal(`no data for ${idleMs} ms`) : e);
      }
      if (options.signal?.aborted === true) return;
      // A body cut mid-event (the apiserver went away) ends the stream without an error on some paths.
      if (pending.trim() !== '' || res.complete === false) throw transportError(this.#t.description, what, internal('watch stream ended mid-event'));
    } finally {
      cancelIdle();
      options.signal?.removeEventListener('abort', onOuterAbort);
      local.abort();
    }
  }

  /**
   * The resources of a group/version (`v1`, `apps/v1`, `route.openshift.io/v1`), or undefined
   * when the apiserver does not serve it. Answers are cached per client; refreshDiscovery drops them.
   */
  async resourcesOf(apiVersion: string): Promise<readonly ApiResource[] | undefined> {
    let p = this.#discovery.get(apiVersion);
    if (p === undefined) {
      p = this.#call<{ resources?: ApiResource[] }>(`discover ${apiVersion}`, 'GET', groupVersionPath(apiVersion)).then(
        (l) => (l.resources ?? []).filter((r) => !r.name.includes('/')),
        (e: unknown) => {
          if (e instanceof ZtwimError && e.code === 'ERR_NOT_FOUND') return undefined;
          throw e;
        },
      );
      p.catch(() => this.#discovery.delete(apiVersion));
      this.#discovery.set(apiVersion, p);
    }
    return p;
  }

  /** True when the apiserver serves the group/version (e.g. `route.openshift.io/v1`). */
  async hasGroupVersion(apiVersion: string): Promise<boolean> {
    return (await this.resourcesOf(apiVersion)) !== undefined;
  }

  /** The ResourceRef of a kind in a group/version, or undefined when it is not served. */
  async resourceFor(apiVersion: string, kind: string): Promise<ResourceRef | undefined> {
    const r = (await this.resourcesOf(apiVersion))?.find((x) => x.kind === kind);
    return r === undefined ? undefined : { apiVersion, resource: r.name, namespaced: r.namespaced, kind: r.kind };
  }

  /** Forgets cached discovery (after CRDs were installed or removed): one group/version, or all. */
  refreshDiscovery(apiVersion?: string): void {
    if (apiVersion === undefined) this.#discovery.clear();
    else this.#discovery.delete(apiVersion);
  }
}

/** `configmaps "ns/name"` or `configmaps.example.com` for messages. */
/** `status of ` before the object's description when a write goes to its status subresource. */
function ofSubresource(subresource: 'status' | undefined): string {
  return subresource === undefined ? '' : `${subresource} of `;
}

function describe(ref: ResourceRef, namespace: string | undefined, name?: string): string {
  const { group } = groupVersionOf(ref.apiVersion);
  const res = group === '' ? ref.resource : `${ref.resource}.${group}`;
  if (name === undefined) return ref.namespaced && namespace !== undefined && namespace !== '' ? `${res} in ${namespace}` : res;
  return `${res} "${ref.namespaced && namespace !== undefined && namespace !== '' ? `${namespace}/` : ''}${name}"`;
}

function named(object: KubeObject): { name: string; namespace: string | undefined } {
  const name = object.metadata.name;
  if (name === undefined || name === '') throw new ZtwimError('ERR_INVALID_ARGUMENT', 'k8s: the object has no metadata.name');
  return { name, namespace: object.metadata.namespace };
}

function withTypeMeta<T extends KubeObject>(ref: ResourceRef, object: T): T {
  if (object.apiVersion !== undefined && object.kind !== undefined) return object;
  return { ...object, apiVersion: object.apiVersion ?? ref.apiVersion, ...(object.kind === undefined && ref.kind !== undefined ? { kind: ref.kind } : {}) };
}

function writeQuery(o: WriteOptions): string {
  return queryOf({ fieldManager: o.fieldManager, dryRun: o.dryRun === true ? 'All' : undefined, fieldValidation: o.fieldValidation });
}

function applyQuery(o: ApplyOptions): string {
  if (o.fieldManager === '') throw new ZtwimError('ERR_INVALID_ARGUMENT', 'k8s: server-side apply needs a fieldManager');
  return queryOf({ fieldManager: o.fieldManager, force: o.force === true ? 'true' : undefined, dryRun: o.dryRun === true ? 'All' : undefined });
}

function parseEvent(description: string, what: string, line: string): { type: string; object: unknown } {
  let ev: unknown;
  try {
    ev = JSON.parse(line);
  } catch (e) {
    throw new ZtwimError('ERR_INTERNAL', `k8s ${description}: ${what}: watch event is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof ev !== 'object' || ev === null || typeof (ev as { type?: unknown }).type !== 'string') {
    throw new ZtwimError('ERR_INTERNAL', `k8s ${description}: ${what}: watch event without a type`);
  }
  return ev as { type: string; object: unknown };
}
