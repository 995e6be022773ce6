/**
 * The CA's rotation state machine, once for every kind of key it rotates (SPIRE
 * `pkg/server/ca/manager/slot.go`): each kind has a current and a next slot. A new key is
 * prepared into the next slot (and published in the bundle) at half of the current key's life,
 * activated (used for signing) at five sixths of it, and an expired key leaves its slot. X.509 CA
 * and JWT key run the same steps in the same pass; a third kind (a WIT key) is one more SlotKind.
 */
import { failedPrecondition, type Logger } from '@ztwim/core';

export type SlotName = 'A' | 'B';

const DAY = 86_400_000;

/** When the next key is prepared: at ½ of the current key's life, at most 30 days before it expires. */
export function prepareAt(issuedAt: Date, notAfter: Date): number {
  const life = notAfter.getTime() - issuedAt.getTime();
  return notAfter.getTime() - Math.min(life / 2, 30 * DAY);
}

/** When the prepared key is activated: at ⅚ of the current key's life, at most 7 days before it expires. */
export function activateAt(issuedAt: Date, notAfter: Date): number {
  const life = notAfter.getTime() - issuedAt.getTime();
  return notAfter.getTime() - Math.min(life / 6, 7 * DAY);
}

export const otherSlot = (s: SlotName): SlotName => (s === 'A' ? 'B' : 'A');

/** One filled slot: a key of kind K, the key manager's ID for it, and its lifetime. */
export interface Slot<K> {
  readonly name: SlotName;
  /** The key manager's ID of the private key (`x509-CA-A`, `JWT-Signer-B`, ...). */
  readonly keyId: string;
  readonly key: K;
  readonly issuedAt: Date;
  readonly notAfter: Date;
}

/** What differs between kinds of keys: how one is made, journaled, restored and logged. */
export interface SlotKind<K, R> {
  /** Names the kind in logs ("X509 CA", "JWT key"). */
  readonly label: string;
  /** Makes a new key in the slot and publishes it in the bundle, before anything is signed with it. */
  prepare(slot: SlotName): Promise<Slot<K>>;
  /** The journal record of a slot. */
  record(slot: Slot<K>): R;
  /** The slot of a journal record, or undefined when its key is gone from the key manager. */
  restore(record: R): Promise<Slot<K> | undefined>;
  /** Log fields naming a slot's key. */
  describe(slot: Slot<K>): Record<string, unknown>;
}

/** What one rotation pass changed: the bundle (publish it) and the slots (journal them). */
export interface RotationResult {
  readonly bundleChanged: boolean;
  readonly slotsChanged: boolean;
}

/** A journal's view of one kind: its current, next and old records. */
export interface SlotRecords<R> {
  readonly current?: R;
  readonly next?: R;
  readonly old?: R;
}

/**
 * The current and next slot of one kind of key, and the state machine that moves them. After an
 * activation the key that signed before stays known as the old key (SPIRE keeps it in the next
 * slot with status OLD) until a new key is prepared in its slot or it expires: the LocalAuthority
 * API shows it, and it stays in the bundle until it expires.
 */
export class SlotPair<K, R> {
  readonly kind: SlotKind<K, R>;
  readonly #log: Logger;
  #current: Slot<K> | undefined;
  #next: Slot<K> | undefined;
  #old: Slot<K> | undefined;

  constructor(kind: SlotKind<K, R>, log: Logger) {
    this.kind = kind;
    this.#log = log;
  }

  get current(): Slot<K> | undefined {
    return this.#current;
  }

  get next(): Slot<K> | undefined {
    return this.#next;
  }

  /** The key that signed before the last activation, until a key is prepared in its slot or it expires. */
  get old(): Slot<K> | undefined {
    return this.#old;
  }

  /**
   * One pass at `now` (ms): retire expired keys, fill an empty current slot (promoting the next
   * key, or preparing one in slot A), prepare the next key past the current one's preparation
   * threshold, and activate it past the activation threshold once `canActivate` allows it (with
   * several servers on one datastore: once every other server can have seen it in the bundle).
   */
  async rotate(now: number, canActivate: (next: Slot<K>) => boolean = () => true): Promise<RotationResult> {
    let bundleChanged = false;
    let slotsChanged = false;
    if (this.#current !== undefined && now >= this.#current.notAfter.getTime()) this.#current = undefined;
    if (this.#next !== undefined && now >= this.#next.notAfter.getTime()) this.#next = undefined;
    if (this.#old !== undefined && now >= this.#old.notAfter.getTime()) {
      this.#old = undefined;
      slotsChanged = true;
    }
    if (this.#current === undefined) {
      if (this.#next !== undefined) {
        this.#current = this.#next;
        this.#next = undefined;
      } else {
        this.#current = await this.kind.prepare('A');
        bundleChanged = true;
      }
      slotsChanged = true;
      this.#logged(this.#current, 'activated');
    }
    const cur = this.#current;
    if (this.#next === undefined && now > prepareAt(cur.issuedAt, cur.notAfter)) {
      await this.prepareNext();
      bundleChanged = slotsChanged = true;
    }
    if (this.#next !== undefined && now > activateAt(cur.issuedAt, cur.notAfter) && canActivate(this.#next)) {
      this.activateNext();
      slotsChanged = true;
    }
    return { bundleChanged, slotsChanged };
  }

  /**
   * Prepares a new key in the slot beside the current one (SPIRE's PrepareX509CA / PrepareJWTKey):
   * it replaces the old key there, or a key prepared before that was never activated.
   */
  async prepareNext(): Promise<Slot<K>> {
    const cur = this.#current;
    if (cur === undefined) throw failedPrecondition('server is initializing');
    const next = await this.kind.prepare(otherSlot(cur.name));
    this.#next = next;
    this.#old = undefined;
    this.#logged(next, 'prepared');
    return next;
  }

  /** Makes the prepared key the current one; the key that signed so far becomes the old key. */
  activateNext(): Slot<K> {
    const next = this.#next;
    if (next === undefined) throw failedPrecondition('no prepared authority');
    this.#old = this.#current;
    this.#current = next;
    this.#next = undefined;
    this.#logged(next, 'activated');
    return next;
  }

  records(): SlotRecords<R> {
    const current = this.#current === undefined ? undefined : this.kind.record(this.#current);
    const next = this.#next === undefined ? undefined : this.kind.record(this.#next);
    const old = this.#old === undefined ? undefined : this.kind.record(this.#old);
    return { ...(current === undefined ? {} : { current }), ...(next === undefined ? {} : { next }), ...(old === undefined ? {} : { old }) };
  }

  async restore(records: SlotRecords<R>): Promise<void> {
    this.#current = records.current === undefined ? undefined : await this.kind.restore(records.current);
    this.#next = records.next === undefined ? undefined : await this.kind.restore(records.next);
    this.#old = records.old === undefined || records.next !== undefined ? undefined : await this.kind.restore(records.old);
  }

  #logged(slot: Slot<K>, what: 'prepared' | 'activated'): void {
    this.#log.info({ slot: slot.name, ...this.kind.describe(slot) }, `${this.kind.label} ${what}`);
  }
}
