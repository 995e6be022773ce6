// A controller work queue (client-go's workqueue, reduced to what one-key-per-kind controllers
// need): a key queued while it is being processed runs once more afterwards, never twice at once;
// a failed key is retried after a capped exponential backoff; a key can ask to run again after a
// delay (waiting for a rollout). Time comes from the injected clock.
import type { Clock, Logger } from '@ztwim/core';

export interface ReconcileResult {
  /** Run this key again after so many ms (a precondition or a rollout being waited for). */
  readonly requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Whether an error is worth a retry (API trouble) or not (the next change will trigger a run). */
  readonly retryable?: (e: unknown) => boolean;
}

export class WorkQueue {
  private readonly dirty = new Set<string>();
  private readonly running = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, () => void>();
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  private readonly o: Required<Omit<WorkQueueOptions, 'clock' | 'log'>> & Pick<WorkQueueOptions, 'clock' | 'log'>;

  private readonly handler: (key: string) => Promise<ReconcileResult>;

  constructor(handler: (key: string) => Promise<ReconcileResult>, options: WorkQueueOptions) {
    this.handler = handler;
    this.o = { baseDelayMs: 500, maxDelayMs: 60_000, retryable: () => true, ...options };
  }

  /** Queues a key now (coalesced with a pending run of it). */
  add(key: string): void {
    if (this.stopped) return;
    this.timers.get(key)?.();
    this.timers.delete(key);
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    this.running.add(key);
    queueMicrotask(() => void this.process(key));
  }

  /** Queues a key after `ms` (a later add() runs it sooner). */
  addAfter(key: string, ms: number): void {
    if (this.stopped || this.timers.has(key)) return;
    this.timers.set(
      key,
      this.o.clock.setTimer(ms, () => {
        this.timers.delete(key);
        this.add(key);
      }),
    );
  }

  /** Failures in a row of a key (0 after a success). */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Resolves when no key is running or queued (timers may still be armed). */
  idle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const c of this.timers.values()) c();
    this.timers.clear();
  }

  private async process(key: string): Promise<void> {
    for (;;) {
      this.dirty.delete(key);
      try {
        const r = await this.handler(key);
        this.failures.delete(key);
        if (r.requeueAfterMs !== undefined) this.addAfterInternal(key, r.requeueAfterMs);
      } catch (e) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        if (this.o.retryable(e)) {
          const delay = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (n - 1));
          this.o.log.warn({ key, error: (e as Error).message, retry_in_ms: delay, failures: n }, 'Reconcile failed, retrying');
          this.addAfterInternal(key, delay);
        } else {
          this.o.log.warn({ key, error: (e as Error).message }, 'Reconcile failed, not retrying');
        }
      }
      if (!this.dirty.has(key) || this.stopped) break;
    }
    this.running.delete(key);
    if (this.running.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private addAfterInternal(key: string, ms: number): void {
    this.timers.get(key)?.();
    this.timers.delete(key);
    this.addAfter(key, ms);
  }
}
