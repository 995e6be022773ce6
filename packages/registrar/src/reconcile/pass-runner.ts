// One reconcile pass at a time (SPIRE's pkg/reconciler): trigger() asks for a full pass; triggers
// that arrive while a pass runs collapse into one more pass after it, so a burst of 1,000 events
// costs a few passes, not 1,000. With no trigger the runner still runs a full pass every
// gcInterval (the idle tick that converges after out-of-band changes on the server).
//
// triggerPod() asks for an incremental pass over that pod only (podPass): pod events collect in a
// dirty set and run as one pod pass, unless a full pass is due anyway (asked for, the dirty set
// larger than maxPodPass, or the last full pass older than gcInterval, so a steady stream of pod
// events never holds the safety net off).
import type { Cancel, Clock } from '@ztwim/core';
import { unavailable } from '@ztwim/core';

export interface PassRunnerOptions<P = unknown> {
  readonly clock: Clock;
  readonly gcIntervalMs: number;
  /** One full pass; its errors are the pass's own business (logged there), never the runner's. */
  readonly pass: (signal: AbortSignal) => Promise<void>;
  /** An incremental pass over the pods given; resolves true when a full pass is needed instead. */
  readonly podPass?: (pods: P[], signal: AbortSignal) => Promise<boolean>;
  /** More dirty pods than this run as a full pass (default 500). */
  readonly maxPodPass?: number;
  /** Called when a pass throws anyway. */
  readonly onError?: (e: unknown) => void;
}

export class PassRunner<P = unknown> {
  private pendingFull = false;
  private readonly dirty = new Map<string, P>();
  private lastFullMs = Number.NEGATIVE_INFINITY;
  private running: Promise<void> | undefined;
  private idleTimer: Cancel | undefined;
  private readonly abort = new AbortController();
  private stopped = false;
  private started = false;
  /** Passes completed, full and incremental (for tests and metrics). */
  passes = 0;
  /** Of which incremental pod passes. */
  podPasses = 0;

  private readonly opts: PassRunnerOptions<P>;

  constructor(opts: PassRunnerOptions<P>) {
    this.opts = opts;
  }

  /** Starts with one full pass now (as SPIRE's runner does on start). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.trigger();
  }

  /** Asks for a full pass; coalesces with any already pending. */
  trigger(): void {
    if (this.stopped || !this.started) return;
    this.pendingFull = true;
    this.run();
  }

  /** Asks for a pass over pod `key` (a full one without podPass). */
  triggerPod(key: string, pod: P): void {
    if (this.stopped || !this.started) return;
    if (this.opts.podPass === undefined) return this.trigger();
    this.dirty.set(key, pod);
    this.run();
  }

  /** Resolves when no pass is running or pending. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.idleTimer?.();
    this.abort.abort(unavailable('registrar stopping'));
    await this.idle();
  }

  private run(): void {
    if (this.running === undefined) this.running = this.loop();
  }

  private fullDue(): boolean {
    return this.pendingFull || this.dirty.size > (this.opts.maxPodPass ?? 500) || this.opts.clock.nowMs() - this.lastFullMs >= this.opts.gcIntervalMs;
  }

  private async loop(): Promise<void> {
    this.idleTimer?.();
    this.idleTimer = undefined;
    try {
      while ((this.pendingFull || this.dirty.size > 0) && !this.stopped) {
        const podPass = this.opts.podPass;
        if (podPass === undefined || this.fullDue()) {
          // A full pass covers every dirty pod too.
          this.pendingFull = false;
          this.dirty.clear();
          this.lastFullMs = this.opts.clock.nowMs();
          try {
            await this.opts.pass(this.abort.signal);
          } catch (e) {
            this.opts.onError?.(e);
          }
        } else {
          const pods = [...this.dirty.values()];
          this.dirty.clear();
          try {
            if (await podPass(pods, this.abort.signal)) this.pendingFull = true;
          } catch (e) {
            this.opts.onError?.(e);
            this.pendingFull = true; // the pods' turn is lost: the full pass covers them
          }
          this.podPasses++;
        }
        this.passes++;
      }
    } finally {
      this.running = undefined;
      if (!this.stopped) this.idleTimer = this.opts.clock.setTimer(this.opts.gcIntervalMs, () => this.trigger());
    }
  }
}
