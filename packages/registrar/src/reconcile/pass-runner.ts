// One reconcile pass at a time (SPIRE's pkg/reconciler): trigger() asks for a pass; triggers that
// arrive while a pass runs collapse into one more pass after it, so a burst of 1,000 pod events
// costs a few passes, not 1,000. With no trigger the runner still runs a pass every gcInterval
// (the idle tick that converges after out-of-band changes on the server).
import type { Cancel, Clock } from '@ztwim/core';
import { unavailable } from '@ztwim/core';

export interface PassRunnerOptions {
  readonly clock: Clock;
  readonly gcIntervalMs: number;
  /** One pass; its errors are the pass's own business (logged there), never the runner's. */
  readonly pass: (signal: AbortSignal) => Promise<void>;
  /** Called when a pass throws anyway. */
  readonly onError?: (e: unknown) => void;
}

export class PassRunner {
  private pending = false;
  private running: Promise<void> | undefined;
  private idleTimer: Cancel | undefined;
  private readonly abort = new AbortController();
  private stopped = false;
  private started = false;
  /** Passes completed (for tests and metrics). */
  passes = 0;

  private readonly opts: PassRunnerOptions;

  constructor(opts: PassRunnerOptions) {
    this.opts = opts;
  }

  /** Starts with one pass now (as SPIRE's runner does on start). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.trigger();
  }

  /** Asks for a pass; coalesces with any already pending. */
  trigger(): void {
    if (this.stopped || !this.started) return;
    this.pending = true;
    if (this.running === undefined) this.running = this.loop();
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

  private async loop(): Promise<void> {
    this.idleTimer?.();
    this.idleTimer = undefined;
    try {
      while (this.pending && !this.stopped) {
        this.pending = false;
        try {
          await this.opts.pass(this.abort.signal);
        } catch (e) {
          this.opts.onError?.(e);
        }
        this.passes++;
      }
    } finally {
      this.running = undefined;
      if (!this.stopped) this.idleTimer = this.opts.clock.setTimer(this.opts.gcIntervalMs, () => this.trigger());
    }
  }
}
