// The cancellation state of one server call, with its AbortSignal made only when something asks
// for it. Most handlers never look at their signal, and an AbortController per call was measured
// as one of the larger per-call costs of the unary paths: the controller, its signal (an
// EventTarget with a listener map) and, at the end of every call, an 'abort' event dispatched
// to say the call is over. Here the end of a call without a signal is two field writes.

export class CallAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown = undefined;

  /** The call's signal; made on first use, already aborted if the call has ended. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** Ends the call with `reason` (the first reason wins, as with AbortController). */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}
