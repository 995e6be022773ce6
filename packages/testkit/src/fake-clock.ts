import { sleepWith, type Cancel, type Clock } from '@ztwim/core';

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * A clock that only moves when a test calls advance(). Timers fire in order of their due time,
 * each seeing now() equal to its due time. waitForTimers(n) resolves once n timers are armed,
 * so tests can synchronise with background loops without sleeping.
 */
export class FakeClock implements Clock {
  private ms: number;
  private timers: Timer[] = [];
  private nextId = 1;
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  constructor(start: Date | number = Date.UTC(2026, 0, 1, 0, 0, 0)) {
    this.ms = typeof start === 'number' ? start : start.getTime();
  }

  now(): Date {
    return new Date(this.ms);
  }

  nowMs(): number {
    return this.ms;
  }

  setTimer(ms: number, fn: () => void): Cancel {
    const t: Timer = { id: this.nextId++, at: this.ms + Math.max(0, ms), fn };
    this.timers.push(t);
    this.notify();
    return () => {
      this.timers = this.timers.filter((x) => x.id !== t.id);
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }

  /** Number of armed timers. */
  pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by ms, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.ms + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = this.timers[0];
      if (t === undefined || t.at > target) break;
      this.timers.shift();
      this.ms = t.at;
      t.fn();
    }
    this.ms = target;
  }

  /** Sets the time to an absolute instant (must not go backwards), firing due timers. */
  set(to: Date | number): void {
    const ms = typeof to === 'number' ? to : to.getTime();
    if (ms < this.ms) throw new Error('fake clock cannot go backwards');
    this.advance(ms - this.ms);
  }

  /** Resolves when at least n timers are armed. */
  waitForTimers(n = 1): Promise<void> {
    if (this.timers.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  private notify(): void {
    const ready = this.waiters.filter((w) => this.timers.length >= w.n);
    this.waiters = this.waiters.filter((w) => this.timers.length < w.n);
    for (const w of ready) w.resolve();
  }
}
