// Internal: the lifecycle the Workload API sources share (go-spiffe's watcherBase): the client
// (owned or borrowed), the stop signal, readiness, the watches' end, the update listeners, and
// what a watch's updates and errors do to the source.
import { SpiffeError } from '../errors.ts';
import { GrpcCode, WorkloadApiClient, WorkloadApiError, type Watcher } from './client.ts';

export interface SourceLifecycleOptions {
  /** A client to use (not closed by the source); otherwise one is created for `address`. */
  readonly client?: WorkloadApiClient;
  readonly address?: string;
  /** Aborting it before the first update rejects `create`; later it closes the source. */
  readonly signal?: AbortSignal;
  /**
   * Watch errors: connection failures, discarded or refused updates, and PermissionDenied,
   * after which the source serves nothing until the Workload API sends an identity again.
   */
  readonly onError?: (err: WorkloadApiError) => void;
}

export class SourceLifecycle<U> {
  readonly client: WorkloadApiClient;
  readonly #name: string;
  readonly #ownsClient: boolean;
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  readonly #onError: ((err: WorkloadApiError) => void) | undefined;
  readonly #onWithdrawn: () => void;
  readonly #listeners = new Set<(u: U) => void>();
  readonly #done: Promise<void>[] = [];
  #withdrawn: WorkloadApiError | undefined;

  /** `name` prefixes messages (`x509source`); `onWithdrawn` drops the source's state. */
  constructor(name: string, opts: SourceLifecycleOptions, onWithdrawn: () => void) {
    this.#name = name;
    this.#ownsClient = opts.client === undefined;
    this.client = opts.client ?? new WorkloadApiClient(opts.address === undefined ? {} : { address: opts.address });
    this.#signal = opts.signal === undefined ? this.#stop.signal : AbortSignal.any([opts.signal, this.#stop.signal]);
    this.#onError = opts.onError;
    this.#onWithdrawn = onWithdrawn;
  }

  /**
   * Starts `run(watcher, signal)`. Each update goes to `adopt`, which throws to refuse it (the
   * source keeps its state and the refusal is reported). The promise resolves once an update is
   * adopted and rejects if the watch ends first (InvalidArgument/Canceled, or the signal).
   */
  watch<T>(run: (w: Watcher<T>, signal: AbortSignal) => Promise<void>, adopt: (update: T) => void): Promise<void> {
    let isReady = false;
    let resolveReady!: () => void;
    let rejectReady!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    ready.catch(() => {});
    const watcher: Watcher<T> = {
      onUpdate: (u) => {
        try {
          adopt(u);
        } catch (e) {
          const m = e instanceof Error ? e.message : String(e);
          this.#report(new WorkloadApiError(GrpcCode.Unknown, m, `${this.#name}: refused update: ${m}`, e));
          return;
        }
        this.#withdrawn = undefined;
        if (!isReady) {
          isReady = true;
          resolveReady();
        }
      },
      onError: (e) => {
        // Workload API §5.2.1: PermissionDenied means the workload has no identity (any more).
        if (e.grpcCode === GrpcCode.PermissionDenied) {
          this.#withdrawn = e;
          this.#onWithdrawn();
        }
        this.#report(e);
      },
    };
    const done = run(watcher, this.#signal).then(
      () => {
        if (!isReady) rejectReady(new SpiffeError('ERR_WORKLOAD_API', 'workloadapi: source closed before the first update'));
      },
      (e: unknown) => {
        if (!isReady) rejectReady(e);
      },
    );
    this.#done.push(done);
    return ready;
  }

  /** Waits for every watch's first update; on failure closes the source and rethrows. */
  async ready(watches: readonly Promise<void>[]): Promise<void> {
    try {
      await Promise.all(watches);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  #report(e: WorkloadApiError): void {
    try {
      this.#onError?.(e);
    } catch {
      // a failing error callback must not stop the watch
    }
  }

  /** Throws unless the source is open. */
  checkOpen(): void {
    if (this.#stop.signal.aborted) throw new SpiffeError('ERR_WORKLOAD_API', `${this.#name}: source is closed`);
  }

  /**
   * Throws unless the source is open and its identity has not been withdrawn. A withdrawn identity
   * throws a WorkloadApiError with `grpcCode` PermissionDenied (the Workload API's answer is its
   * `cause`), so callers can tell it from a source that is closed or not ready.
   */
  check(): void {
    this.checkOpen();
    const w = this.#withdrawn;
    if (w !== undefined) {
      throw new WorkloadApiError(w.grpcCode, w.grpcMessage, `${this.#name}: identity withdrawn by the Workload API: ${w.grpcMessage}`, w);
    }
  }

  /** Calls every listener with `u`; a listener's failure does not stop the others. */
  emit(u: U): void {
    for (const l of this.#listeners) {
      try {
        l(u);
      } catch {
        // a listener's failure must not stop updates
      }
    }
  }

  onUpdate(cb: (u: U) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Stops the watches (and closes the client if the source created it). */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#listeners.clear();
    if (this.#ownsClient) this.client.close();
    await Promise.all(this.#done);
  }
}
