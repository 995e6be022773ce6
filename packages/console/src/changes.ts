// Live updates for every open page from one poll: the console asks the server for a fingerprint of
// what its pages list (agent and entry counts, the bundle's sequence number, and the server's
// write revision, ztwim.server.v1.Changes, which moves on an edit that leaves every count the
// same) once per interval while at least one page listens, and tells every listener when it moves.
import { asError, type Clock } from '@ztwim/core';

export type ChangeEvent = { readonly kind: 'changed'; readonly fingerprint: string } | { readonly kind: 'error'; readonly message: string };

export interface ChangeWatcherOptions {
  /** A string that differs whenever what the pages show differs (AdminApi.fingerprint). */
  readonly fingerprint: () => Promise<string>;
  readonly clock: Clock;
  /** Default 1 s. */
  readonly intervalMs?: number;
}

export class ChangeWatcher {
  readonly #opts: ChangeWatcherOptions;
  readonly #listeners = new Set<(e: ChangeEvent) => void>();
  #cancel: (() => void) | undefined;
  #last = '';
  #polling = false;

  constructor(opts: ChangeWatcherOptions) {
    this.#opts = opts;
  }

  /** Calls `listener` at each change (and each failed poll) until the returned function is called. */
  subscribe(listener: (e: ChangeEvent) => void): () => void {
    this.#listeners.add(listener);
    if (this.#cancel === undefined && !this.#polling) this.#schedule(0);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) {
        this.#cancel?.();
        this.#cancel = undefined;
        // The next listener starts from a fresh baseline, not from a fingerprint seen long ago.
        this.#last = '';
      }
    };
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  #schedule(ms: number): void {
    this.#cancel = this.#opts.clock.setTimer(ms, () => void this.#poll());
  }

  async #poll(): Promise<void> {
    this.#cancel = undefined;
    if (this.#listeners.size === 0) return;
    this.#polling = true;
    let event: ChangeEvent | undefined;
    try {
      const f = await this.#opts.fingerprint();
      if (this.#last !== '' && f !== this.#last) event = { kind: 'changed', fingerprint: f };
      this.#last = f;
    } catch (e) {
      event = { kind: 'error', message: asError(e).message };
    } finally {
      this.#polling = false;
    }
    if (event !== undefined) for (const l of [...this.#listeners]) l(event);
    if (this.#listeners.size > 0 && this.#cancel === undefined) this.#schedule(this.#opts.intervalMs ?? 1000);
  }
}
