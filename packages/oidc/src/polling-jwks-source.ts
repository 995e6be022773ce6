import type { Clock, Logger } from '@ztwim/core';
import { every, silentLogger, systemClock } from '@ztwim/core';
import type { JsonWebKey } from './jwk.ts';
import { Listeners, type JwksSource, type KeySetSnapshot, type Unsubscribe } from './jwks-source.ts';

export interface PollingOptions {
  readonly intervalMs: number;
  readonly clock?: Clock | undefined;
  readonly logger?: Logger | undefined;
}

/**
 * A key source that reads its keys on a timer (a bundle file, the server API): one read at a
 * time (poll() joins a read in flight), listeners told of each new key set. run() is the read
 * loop as a task (the provider runs it); close() stops it. Subclasses implement read().
 */
export abstract class PollingJwksSource implements JwksSource {
  protected readonly clock: Clock;
  protected readonly logger: Logger;
  protected readonly intervalMs: number;
  protected snapshot: KeySetSnapshot | undefined;
  protected closed = false;
  private readonly listeners = new Listeners<KeySetSnapshot>();
  private readonly stopping = new AbortController();
  private inFlight: Promise<boolean> | undefined;

  protected constructor(o: PollingOptions) {
    this.intervalMs = o.intervalMs;
    this.clock = o.clock ?? systemClock;
    this.logger = o.logger ?? silentLogger();
  }

  current(): KeySetSnapshot | undefined {
    return this.snapshot;
  }

  onChange(listener: (snapshot: KeySetSnapshot) => void): Unsubscribe {
    return this.listeners.add(listener);
  }

  /** Reads now (or joins the read in flight); resolves to what read() resolved to. Never rejects. */
  poll(): Promise<boolean> {
    this.inFlight ??= this.read().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
    this.stopping.abort();
    this.onClose();
  }

  /** One read of the keys; must not reject. */
  protected abstract read(): Promise<boolean>;

  /** Releases what the subclass holds (connections). */
  protected onClose(): void {}

  /** The wait before the next read, given what the last one resolved to. */
  protected nextDelayMs(_lastRead: boolean): number {
    return this.intervalMs;
  }

  /** Publishes a new key set to current() and the listeners. */
  protected publish(keys: readonly JsonWebKey[]): void {
    const snap = { keys, updatedAt: this.clock.now() };
    this.snapshot = snap;
    this.listeners.emit(snap);
  }

  /**
   * The read loop, until the signal aborts or close(): one read now, then one nextDelayMs() after
   * each read ends.
   */
  run(signal: AbortSignal): Promise<void> {
    let last = false;
    const loop = every(
      this.clock,
      () => this.nextDelayMs(last),
      async () => {
        last = await this.poll();
      },
      { name: this.taskName, log: this.logger },
    );
    return loop(AbortSignal.any([signal, this.stopping.signal]));
  }

  /** Names the read loop in logs. */
  protected abstract readonly taskName: string;
}
