import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RegEntry } from '../spire/entry.ts';
import { regEntry } from '../spire/reg-entry.test-util.ts';
import { compareDeclarers, entryKey, isJoinTokenEntry, outdatedFields, partitionByPrefix, planEntries, type Declarer } from './plan.ts';

function entry(over: Partial<RegEntry> = {}): RegEntry {
  return regEntry({
    spiffeId: 'spiffe://td/ns/a/sa/b',
    parentId: 'spiffe://td/spire/agent/k8s_psat/c/node1',
    selectors: [{ type: 'k8s', value: 'pod-uid:1' }],
    ...over,
  });
}

class Counter implements Declarer {
  toSet = 0;
  masked = 0;
  set = 0;
  failed = 0;
  readonly uid: string;
  readonly createdMs: number;
  readonly deletingMs: number | undefined;
  constructor(uid: string, createdMs: number, deletingMs?: number) {
    this.uid = uid;
    this.createdMs = createdMs;
    this.deletingMs = deletingMs;
  }
  entriesToSet(): void {
    this.toSet++;
  }
  entryMasked(): void {
    this.masked++;
  }
  entrySet(): void {
    this.set++;
  }
  entryFailed(): void {
    this.failed++;
  }
}

const opts = { entryIDPrefix: '', newId: () => 'u' };

describe('entryKey', () => {
  it('ignores selector order and mutable fields, not key fields', () => {
    const a = entry({
      selectors: [
        { type: 'k8s', value: 'a' },
        { type: 'k8s', value: 'b' },
      ],
    });
    const b = entry({
      selectors: [
        { type: 'k8s', value: 'b' },
        { type: 'k8s', value: 'a' },
      ],
      dnsNames: ['x'],
      x509SvidTtl: 5,
    });
    assert.equal(entryKey(a), entryKey(b));
    assert.notEqual(entryKey(a), entryKey({ ...a, parentId: 'spiffe://td/other' }));
    assert.notEqual(entryKey(a), entryKey({ ...a, spiffeId: 'spiffe://td/other' }));
  });
});

describe('compareDeclarers', () => {
  it('prefers older, then live over deleting, then later deletion, then lower UID', () => {
    assert.ok(compareDeclarers(new Counter('b', 1), new Counter('a', 2)) < 0);
    assert.ok(compareDeclarers(new Counter('b', 1), new Counter('a', 1, 5)) < 0);
    assert.ok(compareDeclarers(new Counter('a', 1, 9), new Counter('b', 1, 5)) < 0);
    assert.ok(compareDeclarers(new Counter('a', 1), new Counter('b', 1)) < 0);
    assert.equal(compareDeclarers(new Counter('a', 1), new Counter('a', 1)), 0);
  });
});

describe('planEntries', () => {
  it('creates what is missing, with a prefixed id when a prefix is set', () => {
    const by = new Counter('u1', 1);
    const p = planEntries([], [{ entry: entry(), by }], { entryIDPrefix: 'pfx.', newId: () => 'abc' });
    assert.equal(p.toCreate.length, 1);
    assert.equal(p.toCreate[0]?.entry.id, 'pfx.abc');
    assert.equal(by.toSet, 1);
    const q = planEntries([], [{ entry: entry(), by: new Counter('u1', 1) }], opts);
    assert.equal(q.toCreate[0]?.entry.id, '');
  });

  it('masks all but the oldest declaration of one entry', () => {
    const old = new Counter('z', 1);
    const young = new Counter('a', 2);
    const p = planEntries(
      [],
      [
        { entry: entry({ hint: 'young' }), by: young },
        { entry: entry({ hint: 'old' }), by: old },
      ],
      opts,
    );
    assert.equal(p.toCreate.length, 1);
    assert.equal(p.toCreate[0]?.entry.hint, 'old');
    assert.deepEqual([old.toSet, old.masked, young.toSet, young.masked], [1, 0, 0, 1]);
  });

  it('reuses the current entry id; updates only when a mutable field differs', () => {
    const cur = entry({ id: 'e1', dnsNames: ['a', 'b'] });
    const same = planEntries([cur], [{ entry: entry({ dnsNames: ['b', 'a'] }), by: new Counter('u', 1) }], opts);
    assert.deepEqual([same.toCreate.length, same.toUpdate.length, same.unchanged.length, same.toDelete.length], [0, 0, 1, 0]);
    assert.equal(same.unchanged[0]?.entry.id, 'e1');
    const changed = planEntries([cur], [{ entry: entry({ dnsNames: ['a'] }), by: new Counter('u', 1) }], opts);
    assert.equal(changed.toUpdate.length, 1);
    assert.equal(changed.toUpdate[0]?.entry.id, 'e1');
  });

  it('deletes duplicates and undeclared entries but never join-token aliases', () => {
    const dup1 = entry({ id: 'd1' });
    const dup2 = entry({ id: 'd2' });
    const stray = entry({ id: 's', spiffeId: 'spiffe://td/gone' });
    const alias = entry({ id: 'j', parentId: 'spiffe://td/spire/agent/join_token/tok', selectors: [{ type: 'spiffe_id', value: 'x' }] });
    const p = planEntries([dup1, dup2, stray, alias], [{ entry: entry(), by: new Counter('u', 1) }], opts);
    assert.deepEqual(p.toDelete.map((e) => e.id).sort(), ['d2', 's']);
    assert.equal(p.unchanged[0]?.entry.id, 'd1');
  });
});

describe('outdatedFields', () => {
  it('names every compared field', () => {
    const a = entry();
    const b = entry({ x509SvidTtl: 1, jwtSvidTtl: 1, federatesWith: ['x'], admin: true, downstream: true, dnsNames: ['d'], hint: 'h', storeSvid: true });
    assert.deepEqual(outdatedFields(b, a), ['x509SVIDTTL', 'jwtSVIDTTL', 'federatesWith', 'admin', 'downstream', 'dnsNames', 'hint', 'storeSVID']);
    assert.deepEqual(outdatedFields(a, { ...a, id: 'other' }), []);
  });
});

describe('isJoinTokenEntry', () => {
  it('needs both the join_token parent and a spiffe_id selector', () => {
    assert.equal(isJoinTokenEntry(entry({ parentId: 'spiffe://td/spire/agent/join_token/t', selectors: [{ type: 'spiffe_id', value: 'v' }] })), true);
    assert.equal(isJoinTokenEntry(entry({ parentId: 'spiffe://td/spire/agent/join_token/t' })), false);
    assert.equal(isJoinTokenEntry(entry({ selectors: [{ type: 'spiffe_id', value: 'v' }] })), false);
  });
});

describe('partitionByPrefix', () => {
  const es = [entry({ id: 'p.1' }), entry({ id: 'plain' }), entry({ id: 'old.2' }), entry({ id: 'other.3' })];
  it('manages everything without a prefix', () => {
    assert.equal(partitionByPrefix(es, { entryIDPrefix: '', entryIDPrefixCleanup: undefined }).managed.length, 4);
  });
  it('manages only the prefix; cleanup deletes the old prefix or, with "", dotless ids', () => {
    const a = partitionByPrefix(es, { entryIDPrefix: 'p.', entryIDPrefixCleanup: 'old.' });
    assert.deepEqual([a.managed.map((e) => e.id), a.deleteOnly.map((e) => e.id)], [['p.1'], ['old.2']]);
    const b = partitionByPrefix(es, { entryIDPrefix: 'p.', entryIDPrefixCleanup: '' });
    assert.deepEqual(
      b.deleteOnly.map((e) => e.id),
      ['plain'],
    );
    const c = partitionByPrefix(es, { entryIDPrefix: 'p.', entryIDPrefixCleanup: undefined });
    assert.deepEqual(c.deleteOnly, []);
  });
});
