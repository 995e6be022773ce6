import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { DiskKeyManager } from '../keymanager/disk.ts';
import { CaManager, type CaBundle } from './manager.ts';
import { SlotPair, type Slot, type SlotKind, type SlotName } from './slot.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const root = mkdtempSync(join(tmpdir(), 'ztwim-slot-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Rec {
  readonly name: SlotName;
  readonly id: string;
  readonly issuedAt: number;
}

/** A kind of key that is only a name and a 24 h lifetime; the key store can lose keys. */
function toyKind(clock: FakeClock): { kind: SlotKind<string, Rec>; events: string[]; store: Set<string> } {
  const events: string[] = [];
  const store = new Set<string>();
  let n = 0;
  const slot = (name: SlotName, id: string, issuedAt: number): Slot<string> => ({
    name,
    keyId: `toy-${name}`,
    key: id,
    issuedAt: new Date(issuedAt),
    notAfter: new Date(issuedAt + 24 * HOUR),
  });
  const kind: SlotKind<string, Rec> = {
    label: 'toy key',
    prepare: async (name) => {
      const id = `k${n++}`;
      store.add(id);
      events.push(`prepare ${name} ${id}`);
      return slot(name, id, clock.nowMs());
    },
    record: (s) => ({ name: s.name, id: s.key, issuedAt: s.issuedAt.getTime() }),
    restore: async (r) => (store.has(r.id) ? slot(r.name, r.id, r.issuedAt) : undefined),
    describe: (s) => ({ id: s.key }),
  };
  return { kind, events, store };
}

/** The key in a slot (a call, so that asserting on it does not narrow the slot's type). */
const keyIn = (s: Slot<string> | undefined): string | undefined => s?.key;

describe('SlotPair', () => {
  it('prepares at half life, activates at five sixths, retires the old key, and repeats', async () => {
    const clock = new FakeClock(T0);
    const { kind, events } = toyKind(clock);
    const pair = new SlotPair(kind, silentLogger());
    const at = async (ms: number): Promise<{ bundleChanged: boolean; slotsChanged: boolean }> => {
      clock.set(T0 + ms);
      return pair.rotate(clock.nowMs());
    };

    assert.deepEqual(await at(0), { bundleChanged: true, slotsChanged: true });
    assert.equal(pair.current?.key, 'k0');
    assert.equal(pair.current?.name, 'A');
    assert.equal(keyIn(pair.next), undefined);

    assert.deepEqual(await at(12 * HOUR), { bundleChanged: false, slotsChanged: false }, 'not past half life yet');
    assert.deepEqual(await at(12 * HOUR + 1), { bundleChanged: true, slotsChanged: true });
    assert.equal(pair.next?.key, 'k1');
    assert.equal(pair.next?.name, 'B');
    assert.equal(pair.current?.key, 'k0', 'a prepared key is not used yet');

    assert.deepEqual(await at(20 * HOUR), { bundleChanged: false, slotsChanged: false });
    assert.deepEqual(await at(20 * HOUR + 1), { bundleChanged: false, slotsChanged: true }, 'activation changes no bundle');
    assert.equal(pair.current?.key, 'k1');
    assert.equal(keyIn(pair.next), undefined, 'the old key left its slot');

    // the next cycle runs on k1's own clock (issued at 12 h + 1 ms): prepared into slot A again
    await at(24 * HOUR + 1);
    assert.equal(keyIn(pair.next), undefined);
    await at(24 * HOUR + 2);
    assert.equal(pair.next?.key, 'k2');
    assert.equal(pair.next?.name, 'A');
    assert.deepEqual(events, ['prepare A k0', 'prepare B k1', 'prepare A k2']);
  });

  it('fills an empty current slot from the next one, and drops an expired next key', async () => {
    const clock = new FakeClock(T0);
    const { kind, events } = toyKind(clock);
    const pair = new SlotPair(kind, silentLogger());
    await pair.rotate(clock.nowMs());
    clock.set(T0 + 13 * HOUR);
    await pair.rotate(clock.nowMs());
    // the server was down past the current key's expiry: the prepared key takes over at once
    clock.set(T0 + 24 * HOUR);
    assert.deepEqual(await pair.rotate(clock.nowMs()), { bundleChanged: false, slotsChanged: true });
    assert.equal(pair.current?.key, 'k1');
    // down past both expiries: a fresh key in slot A
    clock.set(T0 + 60 * HOUR);
    assert.deepEqual(await pair.rotate(clock.nowMs()), { bundleChanged: true, slotsChanged: true });
    assert.equal(pair.current?.key, 'k2');
    assert.equal(pair.current?.name, 'A');
    assert.deepEqual(events, ['prepare A k0', 'prepare B k1', 'prepare A k2']);
  });

  it('restores its slots from records, leaving out keys the store lost', async () => {
    const clock = new FakeClock(T0);
    const { kind, store } = toyKind(clock);
    const pair = new SlotPair(kind, silentLogger());
    await pair.rotate(clock.nowMs());
    clock.set(T0 + 13 * HOUR);
    await pair.rotate(clock.nowMs());
    const records = pair.records();
    assert.deepEqual(records, { current: { name: 'A', id: 'k0', issuedAt: T0 }, next: { name: 'B', id: 'k1', issuedAt: T0 + 13 * HOUR } });

    const again = new SlotPair(kind, silentLogger());
    await again.restore(records);
    assert.equal(again.current?.key, 'k0');
    assert.equal(again.next?.key, 'k1');

    store.delete('k0');
    const lost = new SlotPair(kind, silentLogger());
    await lost.restore(records);
    assert.equal(keyIn(lost.current), undefined);
    assert.equal(lost.next?.key, 'k1');
    // its next rotation promotes the surviving key instead of making a new one
    assert.deepEqual(await lost.rotate(clock.nowMs()), { bundleChanged: false, slotsChanged: true });
    assert.equal(lost.current?.key, 'k1');
  });
});

describe('CaManager slots', () => {
  it('rotates X.509 CA and JWT key in step', async () => {
    const clock = new FakeClock(T0);
    const m = new CaManager({ ca: { trustDomain: 'example.org' }, keyManager: new DiskKeyManager({ path: join(root, 'step-keys.json') }), clock });
    await m.start();
    m.stop();
    const state = (): [boolean, boolean] => [m.nextX509Ca() !== undefined, m.nextJwtSigner() !== undefined];
    assert.deepEqual(state(), [false, false]);
    clock.set(T0 + 12 * HOUR + 1000);
    await m.tick();
    assert.deepEqual(state(), [true, true], 'both prepared in the same pass');
    const [caB, kidB] = [m.nextX509Ca(), m.nextJwtSigner()?.kid];
    clock.set(T0 + 20 * HOUR + 1000);
    await m.tick();
    assert.deepEqual(state(), [false, false]);
    assert.equal(m.x509Ca(), caB, 'both activated in the same pass');
    assert.equal(m.jwtSigner().kid, kidB);
  });

  it('resumes a rotation after a restart from its journal: the prepared keys activate, no new ones', async () => {
    const dir = join(root, 'restart');
    const clock = new FakeClock(T0);
    const make = (): CaManager =>
      new CaManager({ ca: { trustDomain: 'example.org' }, keyManager: new DiskKeyManager({ path: join(dir, 'keys.json') }), clock, dataDir: dir });
    const m1 = make();
    await m1.start();
    clock.set(T0 + 13 * HOUR);
    await m1.tick();
    m1.stop();
    const prepared = { ca: m1.nextX509Ca()?.certificate, kid: m1.nextJwtSigner()?.kid, bundle: m1.bundle() };
    assert.ok(prepared.ca !== undefined && prepared.kid !== undefined);

    // down from 13 h to 21 h: past the activation threshold of the current keys
    clock.set(T0 + 21 * HOUR);
    const m2 = make();
    const updates: CaBundle[] = [];
    m2.onBundleUpdate((b) => updates.push(b));
    await m2.start();
    m2.stop();
    assert.deepEqual(m2.x509Ca().certificate, prepared.ca);
    assert.equal(m2.jwtSigner().kid, prepared.kid);
    assert.equal(m2.nextX509Ca(), undefined);
    assert.equal(m2.nextJwtSigner(), undefined);
    assert.deepEqual(m2.bundle(), prepared.bundle, 'both generations stay published, nothing new');
    assert.equal(updates.length, 0);
  });
});
