// Capped exponential backoff with jitter for reconnecting to the apiserver (client-go's reflector
// uses 800 ms doubling to 30 s): the n-th delay is drawn from [base/2, base) with
// base = min(maxMs, initialMs * 2^n), so replicas that lost the apiserver together spread out.
import type { Random } from '@ztwim/core';

export interface BackoffOptions {
  readonly initialMs?: number;
  readonly maxMs?: number;
  /** Randomness for the jitter (bytes, as @ztwim/core's Random). */
  readonly random: Random;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly #random: Random;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    this.initialMs = options.initialMs ?? 800;
    this.maxMs = options.maxMs ?? 30_000;
    this.#random = options.random;
  }

  /** The delay before the next attempt; each call doubles the base up to maxMs. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.floor(base / 2 + (base / 2) * unitInterval(this.#random));
  }

  /** After a success: the next failure waits initialMs again. */
  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}

/** A number in [0, 1) from four random bytes. */
export function unitInterval(random: Random): number {
  return Buffer.from(random(4)).readUInt32BE(0) / 2 ** 32;
}
