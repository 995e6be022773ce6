// The request side of a client or bidi stream whose next request depends on the server's last
// answer (AttestAgent's challenge response, SyncAuthorizedEntries' id batches). A few lines over
// an array and one waiting promise; a library queue (it-pushable) would be one more dependency for
// the two callers here.

/** An async iterable of requests fed by push(); it ends, once drained, after end(). */
export class RequestQueue<T> implements AsyncIterable<T> {
  readonly #queue: T[];
  #wake: (() => void) | undefined;
  #ended = false;

  constructor(first: readonly T[] = []) {
    this.#queue = [...first];
  }

  push(...requests: T[]): void {
    this.#queue.push(...requests);
    this.#wake?.();
  }

  /** No more requests: the stream's request side closes once the queue is drained. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const next = this.#queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((r) => {
        this.#wake = r;
      });
    }
  }
}
