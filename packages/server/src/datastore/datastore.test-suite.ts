/**
 * The DataStore contract (SPIRE `sqltest`): every implementation runs these tests against a real
 * database. `create` opens a fresh, empty store; `peer` opens another store on the same database
 * (another server process, or a restart after close()).
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isZtwimError, randomUuid, unixSeconds, type ErrorCode, type Random } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { createCaCertificate } from '../ca/x509-ca.ts';
import { SimilarEntryError, type AttestedNode, type DataStore, type Entry, type EntryFilter, type NewEntry, type Selector } from './datastore.ts';

export interface ContractDeps {
  readonly clock: FakeClock;
  readonly random: Random;
}

export interface ContractStore {
  readonly store: DataStore;
  /** Opens a second store on the same database. */
  readonly peer: () => Promise<DataStore>;
}

/** Deterministic randomness: SHA-256 of a counter. */
export function seededRandom(seed: string): Random {
  let n = 0;
  return (bytes) => {
    const out = Buffer.alloc(bytes);
    for (let off = 0; off < bytes; off += 32) {
      createHash('sha256').update(`${seed}:${n++}`).digest().copy(out, off);
    }
    return new Uint8Array(out);
  };
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, re?: RegExp): Promise<unknown> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected ${code}, but it resolved`);
  assert.ok(isZtwimError(caught, code), `expected ${code}, got ${String(caught)}`);
  if (re !== undefined) assert.match((caught as Error).message, re);
  return caught;
}

const TD = 'spiffe://example.org';
const sel = (type: string, value: string): Selector => ({ type, value });
const ids = (es: readonly Entry[]): string[] => es.map((e) => e.id).sort();

export function runDataStoreContract(name: string, create: (deps: ContractDeps) => Promise<ContractStore>): void {
  describe(`DataStore contract: ${name}`, () => {
    let clock: FakeClock;
    let ds: DataStore;
    let peer: () => Promise<DataStore>;
    const opened: DataStore[] = [];

    const fresh = async (): Promise<DataStore> => {
      clock = new FakeClock();
      const c = await create({ clock, random: seededRandom(`${name}-${opened.length}`) });
      ds = c.store;
      peer = c.peer;
      opened.push(ds);
      return ds;
    };

    after(async () => {
      for (const s of opened) await s.close();
    });

    describe('registration entries', () => {
      before(fresh);

      it('creates with a UUIDv4 from the injected random, revision 0 and createdAt = now', async () => {
        const random = seededRandom('uuid-check');
        const c = await create({ clock: new FakeClock(), random });
        opened.push(c.store);
        const e = await c.store.createEntry({ spiffeId: `${TD}/w`, parentId: `${TD}/a`, selectors: [sel('unix', 'uid:1')] });
        assert.equal(e.id, randomUuid(seededRandom('uuid-check')));
        assert.match(e.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.equal(e.revisionNumber, 0);
        assert.equal(e.createdAt, unixSeconds(new FakeClock().now()));
        assert.deepEqual(e, {
          id: e.id,
          spiffeId: `${TD}/w`,
          parentId: `${TD}/a`,
          selectors: [sel('unix', 'uid:1')],
          x509SvidTtl: 0,
          jwtSvidTtl: 0,
          federatesWith: [],
          admin: false,
          downstream: false,
          expiresAt: 0,
          dnsNames: [],
          revisionNumber: 0,
          storeSvid: false,
          hint: '',
          createdAt: e.createdAt,
        });
        assert.deepEqual(await c.store.getEntry(e.id), e);
      });

      it('round-trips every field and a custom id', async () => {
        const full: NewEntry = {
          id: 'custom.ID_1-x',
          spiffeId: `${TD}/full`,
          parentId: `${TD}/agent`,
          selectors: [sel('k8s', 'ns:default'), sel('k8s', 'sa:web')],
          x509SvidTtl: 3600,
          jwtSvidTtl: 300,
          federatesWith: ['other.org', 'third.org'],
          admin: true,
          downstream: true,
          expiresAt: 2_000_000_000,
          dnsNames: ['a.example.org', 'b.example.org'],
          storeSvid: true,
          hint: 'external',
        };
        const e = await ds.createEntry(full);
        assert.equal(e.id, 'custom.ID_1-x');
        const got = await ds.getEntry('custom.ID_1-x');
        assert.deepEqual(got, { ...full, revisionNumber: 0, createdAt: e.createdAt });
        assert.equal(await ds.getEntry('nope'), null);
      });

      it('refuses a duplicate custom id with ERR_ALREADY_EXISTS (not a similar entry)', async () => {
        const err = await rejectsWith(
          ds.createEntry({ id: 'custom.ID_1-x', spiffeId: `${TD}/other`, parentId: `${TD}/agent`, selectors: [sel('a', 'b')] }),
          'ERR_ALREADY_EXISTS',
        );
        assert.ok(!(err instanceof SimilarEntryError));
      });

      it('refuses a similar entry (same IDs, same selector set in any order) and carries the existing one', async () => {
        const a = await ds.createEntry({
          spiffeId: `${TD}/sim`,
          parentId: `${TD}/agent`,
          selectors: [sel('x', '1'), sel('y', '2')],
        });
        const err = await rejectsWith(
          ds.createEntry({ spiffeId: `${TD}/sim`, parentId: `${TD}/agent`, selectors: [sel('y', '2'), sel('x', '1'), sel('x', '1')], hint: 'h' }),
          'ERR_ALREADY_EXISTS',
          /similar entry already exists/,
        );
        assert.ok(err instanceof SimilarEntryError);
        assert.deepEqual(err.existing, a);
        // Different selector set, different parent: not similar.
        await ds.createEntry({ spiffeId: `${TD}/sim`, parentId: `${TD}/agent`, selectors: [sel('x', '1')] });
        await ds.createEntry({ spiffeId: `${TD}/sim`, parentId: `${TD}/agent2`, selectors: [sel('x', '1'), sel('y', '2')] });
      });

      const invalid: Array<[string, NewEntry]> = [
        ['no selectors', { spiffeId: `${TD}/w`, parentId: `${TD}/a`, selectors: [] }],
        ['selector without type', { spiffeId: `${TD}/w`, parentId: `${TD}/a`, selectors: [sel('', 'v')] }],
        ['spiffe id without scheme', { spiffeId: 'example.org/w', parentId: `${TD}/a`, selectors: [sel('a', 'b')] }],
        ['empty parent', { spiffeId: `${TD}/w`, parentId: '', selectors: [sel('a', 'b')] }],
        ['negative ttl', { spiffeId: `${TD}/w`, parentId: `${TD}/a`, selectors: [sel('a', 'b')], x509SvidTtl: -1 }],
        ['fractional ttl', { spiffeId: `${TD}/w`, parentId: `${TD}/a`, selectors: [sel('a', 'b')], jwtSvidTtl: 1.5 }],
        ['bad custom id', { id: 'has space', spiffeId: `${TD}/w`, parentId: `${TD}/a`, selectors: [sel('a', 'b')] }],
        ['long custom id', { id: 'x'.repeat(256), spiffeId: `${TD}/w`, parentId: `${TD}/a`, selectors: [sel('a', 'b')] }],
        ['dns names not strings', { spiffeId: `${TD}/w`, parentId: `${TD}/a`, selectors: [sel('a', 'b')], dnsNames: [1 as unknown as string] }],
      ];
      for (const [label, entry] of invalid) {
        it(`refuses an invalid entry: ${label}`, async () => {
          await rejectsWith(ds.createEntry(entry), 'ERR_INVALID_ARGUMENT');
        });
      }

      it('batch-creates in one transaction with per-item results in request order', async () => {
        const before = await ds.countEntries();
        const res = await ds.createEntries([
          { spiffeId: `${TD}/b1`, parentId: `${TD}/batch`, selectors: [sel('b', '1')] },
          { spiffeId: `${TD}/b1`, parentId: `${TD}/batch`, selectors: [sel('b', '1')] },
          { spiffeId: `${TD}/b2`, parentId: `${TD}/batch`, selectors: [] },
          { id: 'custom.ID_1-x', spiffeId: `${TD}/b3`, parentId: `${TD}/batch`, selectors: [sel('b', '3')] },
          { id: 'batch-4', spiffeId: `${TD}/b4`, parentId: `${TD}/batch`, selectors: [sel('b', '4')] },
          { id: 'batch-4', spiffeId: `${TD}/b5`, parentId: `${TD}/batch`, selectors: [sel('b', '5')] },
        ]);
        assert.deepEqual(
          res.map((r) => (r.ok ? 'ok' : r.error.code)),
          ['ok', 'ERR_ALREADY_EXISTS', 'ERR_INVALID_ARGUMENT', 'ERR_ALREADY_EXISTS', 'ok', 'ERR_ALREADY_EXISTS'],
        );
        const r0 = res[0];
        const r1 = res[1];
        assert.ok(r0?.ok === true && r1?.ok === false);
        assert.ok(r1.error instanceof SimilarEntryError);
        assert.deepEqual(r1.error.existing, r0.entry);
        assert.equal(await ds.countEntries(), before + 2);
        assert.equal((await ds.getEntry('batch-4'))?.spiffeId, `${TD}/b4`);
        assert.deepEqual(await ds.createEntries([]), []);
      });

      it('updates: revision +1, no mask replaces every field, a mask only the masked ones', async () => {
        const e = await ds.createEntry({
          spiffeId: `${TD}/u`,
          parentId: `${TD}/agent`,
          selectors: [sel('u', '1')],
          hint: 'old',
          x509SvidTtl: 10,
        });
        clock.advance(5000);
        const u1 = await ds.updateEntry(
          { id: e.id, hint: 'new', x509SvidTtl: 99, selectors: [sel('u', '2')], dnsNames: ['x.org'] },
          { hint: true, selectors: true },
        );
        assert.equal(u1.revisionNumber, 1);
        assert.equal(u1.hint, 'new');
        assert.equal(u1.x509SvidTtl, 10);
        assert.deepEqual(u1.selectors, [sel('u', '2')]);
        assert.deepEqual(u1.dnsNames, []);
        assert.equal(u1.createdAt, e.createdAt);
        assert.deepEqual(await ds.getEntry(e.id), u1);
        assert.equal(await ds.countEntries({ bySelectors: { selectors: [sel('u', '1')], match: 'ANY' } }), 0);
        assert.equal(await ds.countEntries({ bySelectors: { selectors: [sel('u', '2')], match: 'EXACT' } }), 1);
        const u2 = await ds.updateEntry({
          id: e.id,
          spiffeId: `${TD}/u2`,
          parentId: `${TD}/agent`,
          selectors: [sel('u', '3')],
          x509SvidTtl: 1,
          jwtSvidTtl: 2,
          federatesWith: ['fed.org'],
          admin: true,
          downstream: false,
          expiresAt: 0,
          dnsNames: ['d.org'],
          storeSvid: false,
          hint: '',
        });
        assert.equal(u2.revisionNumber, 2);
        assert.deepEqual(await ds.getEntry(e.id), u2);
        // No mask and a missing field: the field is required.
        await rejectsWith(ds.updateEntry({ id: e.id, hint: 'x' }), 'ERR_INVALID_ARGUMENT');
        await rejectsWith(ds.updateEntry({ id: 'missing', hint: 'x' }, { hint: true }), 'ERR_NOT_FOUND', /entry not found/);
        await rejectsWith(ds.updateEntry({ id: e.id, selectors: [] }, { selectors: true }), 'ERR_INVALID_ARGUMENT');
        assert.equal((await ds.getEntry(e.id))?.revisionNumber, 2);
      });

      it('deletes and returns the entry; unknown → ERR_NOT_FOUND, empty id → ERR_INVALID_ARGUMENT', async () => {
        const e = await ds.createEntry({ spiffeId: `${TD}/d`, parentId: `${TD}/agent`, selectors: [sel('d', '1')], federatesWith: ['f.org'] });
        assert.deepEqual(await ds.deleteEntry(e.id), e);
        assert.equal(await ds.getEntry(e.id), null);
        await rejectsWith(ds.deleteEntry(e.id), 'ERR_NOT_FOUND', /entry not found/);
        await rejectsWith(ds.deleteEntry(''), 'ERR_INVALID_ARGUMENT', /missing entry ID/);
        // Its selector rows went with it.
        assert.equal(await ds.countEntries({ bySelectors: { selectors: [sel('d', '1')], match: 'ANY' } }), 0);
      });

      it('prunes entries that expired before the given time', async () => {
        const now = unixSeconds(clock.now());
        const old = await ds.createEntry({ spiffeId: `${TD}/p1`, parentId: `${TD}/prune`, selectors: [sel('p', '1')], expiresAt: now - 10 });
        const later = await ds.createEntry({ spiffeId: `${TD}/p2`, parentId: `${TD}/prune`, selectors: [sel('p', '2')], expiresAt: now + 10 });
        const never = await ds.createEntry({ spiffeId: `${TD}/p3`, parentId: `${TD}/prune`, selectors: [sel('p', '3')] });
        assert.equal(await ds.pruneExpiredEntries(now), 1);
        assert.equal(await ds.getEntry(old.id), null);
        assert.notEqual(await ds.getEntry(later.id), null);
        assert.notEqual(await ds.getEntry(never.id), null);
      });
    });

    describe('entry filters and paging', () => {
      const P = `${TD}/filter-parent`;
      let byName: Map<string, Entry>;

      before(async () => {
        await fresh();
        const spec: Array<[string, Selector[], string[], string, boolean]> = [
          // name, selectors, federatesWith, hint, downstream
          ['a', [sel('t', '1')], [], '', false],
          ['ab', [sel('t', '1'), sel('t', '2')], ['fed1.org'], 'h1', false],
          ['abc', [sel('t', '1'), sel('t', '2'), sel('t', '3')], ['fed1.org', 'fed2.org'], 'h1', true],
          ['c', [sel('t', '3')], ['spiffe://fed2.org'], '', true],
          ['x', [sel('other', '1')], [], 'h2', false],
        ];
        byName = new Map();
        for (const [n, selectors, federatesWith, hint, downstream] of spec) {
          byName.set(n, await ds.createEntry({ spiffeId: `${TD}/${n}`, parentId: P, selectors, federatesWith, hint, downstream }));
        }
        await ds.createEntry({ spiffeId: `${TD}/elsewhere`, parentId: `${TD}/other-parent`, selectors: [sel('t', '1')] });
      });

      const cases: Array<[string, EntryFilter, string[]]> = [
        ['by spiffe id', { bySpiffeId: `${TD}/ab` }, ['ab']],
        ['by parent id', { byParentId: P }, ['a', 'ab', 'abc', 'c', 'x']],
        ['selectors EXACT', { byParentId: P, bySelectors: { selectors: [sel('t', '2'), sel('t', '1')], match: 'EXACT' } }, ['ab']],
        ['selectors SUBSET (entry ⊆ filter)', { byParentId: P, bySelectors: { selectors: [sel('t', '1'), sel('t', '2')], match: 'SUBSET' } }, ['a', 'ab']],
        [
          'selectors SUPERSET (entry ⊇ filter)',
          { byParentId: P, bySelectors: { selectors: [sel('t', '1'), sel('t', '2')], match: 'SUPERSET' } },
          ['ab', 'abc'],
        ],
        ['selectors ANY', { byParentId: P, bySelectors: { selectors: [sel('t', '3'), sel('other', '1')], match: 'ANY' } }, ['abc', 'c', 'x']],
        ['selectors EXACT, none', { bySelectors: { selectors: [sel('t', '2')], match: 'EXACT' } }, []],
        ['federates EXACT', { byFederatesWith: { trustDomains: ['fed1.org'], match: 'EXACT' } }, ['ab']],
        ['federates SUBSET', { byFederatesWith: { trustDomains: ['spiffe://fed2.org'], match: 'SUBSET' } }, ['c']],
        ['federates SUPERSET', { byFederatesWith: { trustDomains: ['fed1.org'], match: 'SUPERSET' } }, ['ab', 'abc']],
        ['federates ANY', { byFederatesWith: { trustDomains: ['fed2.org', 'nope.org'], match: 'ANY' } }, ['abc', 'c']],
        ['by hint', { byHint: 'h1' }, ['ab', 'abc']],
        ['by hint empty string', { byParentId: P, byHint: '' }, ['a', 'c']],
        ['downstream true', { byDownstream: true }, ['abc', 'c']],
        ['downstream false = no filter', { byParentId: P, byDownstream: false }, ['a', 'ab', 'abc', 'c', 'x']],
        ['combined', { byParentId: P, byHint: 'h1', byDownstream: true, bySelectors: { selectors: [sel('t', '3')], match: 'SUPERSET' } }, ['abc']],
      ];
      for (const [label, filter, want] of cases) {
        it(`filters ${label}`, async () => {
          const got = await ds.listEntries(filter);
          assert.deepEqual(ids(got.entries), want.map((n) => byName.get(n)?.id ?? n).sort());
          assert.equal(got.nextPageToken, '');
          assert.equal(await ds.countEntries(filter), want.length);
        });
      }

      it('pages through everything with opaque tokens, in creation order', async () => {
        const all = (await ds.listEntries()).entries;
        assert.equal(all.length, 6);
        const seen: Entry[] = [];
        let token = '';
        let pages = 0;
        do {
          const r = await ds.listEntries(undefined, { pageSize: 4, pageToken: token });
          seen.push(...r.entries);
          token = r.nextPageToken;
          pages++;
        } while (token !== '');
        assert.equal(pages, 2);
        assert.deepEqual(seen, all);
        const f = await ds.listEntries({ byParentId: P }, { pageSize: 2 });
        assert.equal(f.entries.length, 2);
        const f2 = await ds.listEntries({ byParentId: P }, { pageSize: 2, pageToken: f.nextPageToken });
        const f3 = await ds.listEntries({ byParentId: P }, { pageSize: 2, pageToken: f2.nextPageToken });
        assert.equal(f3.nextPageToken, '');
        assert.deepEqual(ids([...f.entries, ...f2.entries, ...f3.entries]), ids((await ds.listEntries({ byParentId: P })).entries));
      });

      const garbage: Array<[string, () => Promise<unknown>]> = [
        ['unknown match', () => ds.listEntries({ bySelectors: { selectors: [sel('a', 'b')], match: 'FOO' as 'ANY' } })],
        ['empty selector set', () => ds.listEntries({ bySelectors: { selectors: [], match: 'ANY' } })],
        ['selectors not a list', () => ds.countEntries({ bySelectors: { selectors: 'a:b' as unknown as Selector[], match: 'ANY' } })],
        ['selector value not a string', () => ds.listEntries({ bySelectors: { selectors: [{ type: 'a', value: 1 as unknown as string }], match: 'ANY' } })],
        ['empty federates list', () => ds.listEntries({ byFederatesWith: { trustDomains: [], match: 'ANY' } })],
        ['spiffe id not a string', () => ds.listEntries({ bySpiffeId: 42 as unknown as string })],
        ['downstream not a boolean', () => ds.listEntries({ byDownstream: 'yes' as unknown as boolean })],
        ['unknown filter field', () => ds.listEntries({ byColour: 'red' } as unknown as EntryFilter)],
        ['filter not an object', () => ds.listEntries('x' as unknown as EntryFilter)],
        ['bad page token', () => ds.listEntries(undefined, { pageSize: 2, pageToken: 'not-a-token' })],
        ['page token with junk', () => ds.listEntries(undefined, { pageToken: '!!!' })],
        ['page token of another list', () => ds.listEntries(undefined, { pageToken: Buffer.from('n:5').toString('base64url') })],
        ['page token zero', () => ds.listEntries(undefined, { pageToken: Buffer.from('e:0').toString('base64url') })],
        ['negative page size', () => ds.listEntries(undefined, { pageSize: -1 })],
        ['fractional page size', () => ds.listEntries(undefined, { pageSize: 1.5 })],
        ['node filter garbage', () => ds.listAttestedNodes({ byBanned: 1 as unknown as boolean })],
        ['node page token garbage', () => ds.listAttestedNodes(undefined, { pageToken: 'AAAA' })],
        ['node expires before NaN', () => ds.countAttestedNodes({ byExpiresBefore: Number.NaN })],
      ];
      for (const [label, call] of garbage) {
        it(`rejects garbage with ERR_INVALID_ARGUMENT: ${label}`, async () => {
          await rejectsWith(call(), 'ERR_INVALID_ARGUMENT');
        });
      }
    });

    describe('authorised entries (§2.5)', () => {
      const AGENT = `${TD}/spire/agent/x509pop/node1`;
      const SERVER = `${TD}/spire/server`;
      const mk = (spiffe: string, parent: string, selectors: Selector[] = [sel('unix', 'uid:0')]): Promise<Entry> =>
        ds.createEntry({ spiffeId: spiffe, parentId: parent, selectors });

      before(fresh);

      it('resolves descendants, node-alias descendants, is cycle-safe and follows changes', async () => {
        const w1 = await mk(`${TD}/w1`, AGENT);
        const w1child = await mk(`${TD}/w1/child`, `${TD}/w1`);
        // A cycle: w1/child → loop → w1/child.
        const loop = await mk(`${TD}/loop`, `${TD}/w1/child`);
        const back = await mk(`${TD}/w1/child`, `${TD}/loop`, [sel('unix', 'uid:9')]);
        const alias = await mk(`${TD}/cluster`, SERVER, [sel('x509pop', 'subject:cn:node1'), sel('x509pop', 'ca:abc')]);
        const viaAlias = await mk(`${TD}/cluster-workload`, `${TD}/cluster`);
        const otherAlias = await mk(`${TD}/other-cluster`, SERVER, [sel('x509pop', 'subject:cn:node2')]);
        await mk(`${TD}/other-cluster-workload`, `${TD}/other-cluster`);
        await mk(`${TD}/not-mine`, `${TD}/spire/agent/x509pop/node2`);
        await mk('spiffe://foreign.org/w', AGENT);
        const nodeSels = [sel('x509pop', 'subject:cn:node1'), sel('x509pop', 'ca:abc'), sel('x509pop', 'serialnumber:01')];
        const got = await ds.listAuthorizedEntries(AGENT, nodeSels);
        assert.deepEqual(ids(got), ids([w1, w1child, loop, back, viaAlias]));
        assert.deepEqual(
          got.find((e) => e.id === w1.id),
          w1,
        );
        assert.ok(!got.some((e) => e.id === alias.id || e.id === otherAlias.id));
        // Alias selectors must be a subset of the node's: one missing selector ⇒ no alias.
        assert.deepEqual(ids(await ds.listAuthorizedEntries(AGENT, [sel('x509pop', 'subject:cn:node1')])), ids([w1, w1child, loop, back]));
        assert.deepEqual(await ds.listAuthorizedEntries(`${TD}/spire/agent/x509pop/nobody`, []), []);

        // Changes are visible at once: create, re-parent, delete.
        const added = await mk(`${TD}/w2`, AGENT);
        assert.ok((await ds.listAuthorizedEntries(AGENT, nodeSels)).some((e) => e.id === added.id));
        await ds.updateEntry({ id: w1.id, parentId: `${TD}/spire/agent/x509pop/node2` }, { parentId: true });
        const afterMove = ids(await ds.listAuthorizedEntries(AGENT, nodeSels));
        assert.deepEqual(afterMove, ids([added, viaAlias]));
        await ds.deleteEntry(viaAlias.id);
        assert.deepEqual(ids(await ds.listAuthorizedEntries(AGENT, nodeSels)), ids([added]));

        // Another store on the same database sees the same, and follows this one's writes.
        const other = await peer();
        opened.push(other);
        assert.deepEqual(ids(await other.listAuthorizedEntries(AGENT, nodeSels)), ids([added]));
        const late = await mk(`${TD}/late`, `${TD}/w2`);
        assert.deepEqual(ids(await other.listAuthorizedEntries(AGENT, nodeSels)), ids([added, late]));
        await ds.pruneEntryEvents(unixSeconds(clock.now()) + 1);
        await ds.deleteEntry(late.id);
        assert.deepEqual(ids(await other.listAuthorizedEntries(AGENT, nodeSels)), ids([added]));
      });

      it('rejects a malformed agent id or node selectors', async () => {
        await rejectsWith(ds.listAuthorizedEntries('node1', []), 'ERR_INVALID_ARGUMENT');
        await rejectsWith(ds.listAuthorizedEntries(AGENT, [{ type: 1 } as unknown as Selector]), 'ERR_INVALID_ARGUMENT');
      });
    });

    describe('attested nodes', () => {
      const A = `${TD}/spire/agent/join_token/t1`;
      const B = `${TD}/spire/agent/x509pop/b`;
      const C = `${TD}/spire/agent/x509pop/c`;
      before(fresh);

      it('creates, gets, refuses duplicates, updates, bans and deletes', async () => {
        const now = unixSeconds(clock.now());
        const a = await ds.createAttestedNode({ spiffeId: A, attestationType: 'join_token', serialNumber: '11', expiresAt: now + 3600 });
        assert.deepEqual(a, {
          spiffeId: A,
          attestationType: 'join_token',
          serialNumber: '11',
          expiresAt: now + 3600,
          newSerialNumber: '',
          newExpiresAt: 0,
          canReattest: false,
          createdAt: now,
          updatedAt: now,
          selectors: [],
        });
        assert.deepEqual(await ds.getAttestedNode(A), a);
        assert.equal(await ds.getAttestedNode(B), null);
        await rejectsWith(ds.createAttestedNode({ spiffeId: A, attestationType: 'join_token', serialNumber: '12', expiresAt: now }), 'ERR_ALREADY_EXISTS');
        const u = await ds.updateAttestedNode(A, { newSerialNumber: '12', newExpiresAt: now + 7200 });
        assert.equal(u.serialNumber, '11');
        assert.equal(u.newSerialNumber, '12');
        const promoted = await ds.updateAttestedNode(A, { serialNumber: '12', expiresAt: now + 7200, newSerialNumber: '', newExpiresAt: 0, canReattest: true });
        assert.equal(promoted.serialNumber, '12');
        assert.equal(promoted.canReattest, true);
        const banned = await ds.banAttestedNode(A);
        assert.equal(banned.serialNumber, '');
        assert.equal(banned.newSerialNumber, '');
        await rejectsWith(ds.updateAttestedNode(B, { serialNumber: '1' }), 'ERR_NOT_FOUND');
        await rejectsWith(ds.banAttestedNode(B), 'ERR_NOT_FOUND');
        await ds.setNodeSelectors(A, [sel('join_token', 'x')]);
        const del = await ds.deleteAttestedNode(A);
        assert.deepEqual(del.selectors, [sel('join_token', 'x')]);
        assert.equal(await ds.getAttestedNode(A), null);
        assert.deepEqual(await ds.getNodeSelectors(A), []);
        await rejectsWith(ds.deleteAttestedNode(A), 'ERR_NOT_FOUND');
      });

      it('sets node selectors (replace, dedupe) independently of the node row', async () => {
        await ds.setNodeSelectors(C, [sel('x509pop', 'b'), sel('x509pop', 'a'), sel('x509pop', 'a')]);
        assert.deepEqual(await ds.getNodeSelectors(C), [sel('x509pop', 'a'), sel('x509pop', 'b')]);
        await ds.setNodeSelectors(C, [sel('x509pop', 'z')]);
        assert.deepEqual(await ds.getNodeSelectors(C), [sel('x509pop', 'z')]);
        await ds.setNodeSelectors(C, []);
        assert.deepEqual(await ds.getNodeSelectors(C), []);
      });

      it('lists and counts with filters and pages', async () => {
        const now = unixSeconds(clock.now());
        const mkNode = async (id: string, type: string, exp: number, re: boolean, sels: Selector[]): Promise<void> => {
          await ds.createAttestedNode({ spiffeId: id, attestationType: type, serialNumber: '1', expiresAt: exp, canReattest: re });
          await ds.setNodeSelectors(id, sels);
        };
        await mkNode(`${TD}/spire/agent/x509pop/n1`, 'x509pop', now + 10, true, [sel('x509pop', 'a'), sel('x509pop', 'b')]);
        await mkNode(`${TD}/spire/agent/x509pop/n2`, 'x509pop', now - 10, true, [sel('x509pop', 'a')]);
        await mkNode(`${TD}/spire/agent/join_token/n3`, 'join_token', now + 10, false, []);
        await ds.banAttestedNode(`${TD}/spire/agent/x509pop/n2`);
        const names = async (f: Parameters<DataStore['listAttestedNodes']>[0]): Promise<string[]> =>
          (await ds.listAttestedNodes(f)).nodes.map((n) => n.spiffeId.split('/').pop() ?? '').sort();
        assert.deepEqual(await names(undefined), ['n1', 'n2', 'n3']);
        assert.deepEqual(await names({ byAttestationType: 'x509pop' }), ['n1', 'n2']);
        assert.deepEqual(await names({ byBanned: true }), ['n2']);
        assert.deepEqual(await names({ byBanned: false }), ['n1', 'n3']);
        assert.deepEqual(await names({ byCanReattest: false }), ['n3']);
        assert.deepEqual(await names({ byExpiresBefore: now }), ['n2']);
        assert.deepEqual(await names({ bySelectorMatch: { selectors: [sel('x509pop', 'a')], match: 'EXACT' } }), ['n2']);
        assert.deepEqual(await names({ bySelectorMatch: { selectors: [sel('x509pop', 'a')], match: 'SUPERSET' } }), ['n1', 'n2']);
        assert.deepEqual(await names({ bySelectorMatch: { selectors: [sel('x509pop', 'a'), sel('x509pop', 'b'), sel('x509pop', 'c')], match: 'SUBSET' } }), [
          'n1',
          'n2',
        ]);
        assert.deepEqual(await names({ bySelectorMatch: { selectors: [sel('x509pop', 'b'), sel('x', 'y')], match: 'ANY' } }), ['n1']);
        assert.equal(await ds.countAttestedNodes({ byAttestationType: 'x509pop', byBanned: false }), 1);
        const p1 = await ds.listAttestedNodes(undefined, { pageSize: 2 });
        assert.equal(p1.nodes.length, 2);
        assert.deepEqual(p1.nodes[0]?.selectors, [sel('x509pop', 'a'), sel('x509pop', 'b')]);
        const p2 = await ds.listAttestedNodes(undefined, { pageSize: 2, pageToken: p1.nextPageToken });
        assert.equal(p2.nodes.length, 1);
        assert.equal(p2.nextPageToken, '');
      });
    });

    describe('cached attested node reads', () => {
      const N = `${TD}/spire/agent/join_token/cached`;
      before(fresh);

      it('answers from memory, drops the node on every write here, and sees other writers after maxAgeMs', async () => {
        const cached = ds.getCachedAttestedNode;
        assert.ok(cached !== undefined, 'SQL stores implement getCachedAttestedNode');
        const get = (): Promise<AttestedNode | null> => cached.call(ds, N, 1000);
        assert.equal(await get(), null);
        await ds.createAttestedNode({ spiffeId: N, attestationType: 'join_token', serialNumber: '1', expiresAt: 0 });
        assert.equal((await get())?.serialNumber, '1');
        // Writes through this store are seen at once: ban, renew, selectors, delete.
        await ds.banAttestedNode(N);
        assert.equal((await get())?.serialNumber, '');
        await ds.updateAttestedNode(N, { serialNumber: '2' });
        assert.equal((await get())?.serialNumber, '2');
        await ds.setNodeSelectors(N, [sel('a', 'b')]);
        assert.deepEqual((await get())?.selectors, [sel('a', 'b')]);
        // Another writer on the same database: the cached read lags by at most maxAgeMs.
        const other = await peer();
        opened.push(other);
        await other.banAttestedNode(N);
        assert.equal((await ds.getAttestedNode(N))?.serialNumber, '', 'the plain read is never cached');
        assert.equal((await get())?.serialNumber, '2');
        clock.advance(1001);
        assert.equal((await get())?.serialNumber, '');
        await ds.deleteAttestedNode(N);
        assert.equal(await get(), null);
      });
    });

    describe('join tokens', () => {
      before(fresh);

      it('creates, takes once (atomically), refuses duplicates and prunes', async () => {
        await ds.createJoinToken({ token: 'tok-1', expiresAt: 100 });
        await rejectsWith(ds.createJoinToken({ token: 'tok-1', expiresAt: 200 }), 'ERR_ALREADY_EXISTS');
        const takes = await Promise.all(Array.from({ length: 8 }, () => ds.takeJoinToken('tok-1')));
        assert.deepEqual(
          takes.filter((t) => t !== null),
          [{ token: 'tok-1', expiresAt: 100 }],
        );
        assert.equal(await ds.takeJoinToken('tok-1'), null);
        await ds.createJoinToken({ token: 'old', expiresAt: 50 });
        await ds.createJoinToken({ token: 'new', expiresAt: 500 });
        assert.equal(await ds.pruneJoinTokens(100), 1);
        assert.equal(await ds.takeJoinToken('old'), null);
        assert.deepEqual(await ds.takeJoinToken('new'), { token: 'new', expiresAt: 500 });
        await rejectsWith(ds.createJoinToken({ token: '', expiresAt: 1 }), 'ERR_INVALID_ARGUMENT');
      });
    });

    describe('bundles and CA journal', () => {
      before(fresh);
      const der = (n: number): Uint8Array => new Uint8Array([0x30, 0x03, 0x02, 0x01, n]);

      it('prunes expired authorities in one step, never the last X.509 one', async () => {
        const T = Date.parse('2026-05-01T00:00:00Z');
        const caCert = (ttlMs: number): Uint8Array => {
          const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
          const chain = createCaCertificate({ trustDomain: TrustDomain.parse('prune.test'), key: { publicKey, privateKey }, ttlMs, now: new Date(T) });
          return chain[0] ?? new Uint8Array();
        };
        const [early, late] = [caCert(1000), caCert(10_000)];
        await ds.setBundle({
          trustDomain: 'prune.test',
          x509Authorities: [
            { asn1: early, tainted: false },
            { asn1: late, tainted: false },
          ],
          jwtAuthorities: [
            { publicKey: der(8), keyId: 'j-early', expiresAt: (T + 1000) / 1000, tainted: false },
            { publicKey: der(9), keyId: 'j-late', expiresAt: (T + 10_000) / 1000, tainted: false },
          ],
          refreshHint: 300,
        });
        assert.equal(await ds.pruneBundle('prune.test', T), false, 'nothing expired yet');
        assert.equal(await ds.pruneBundle('prune.test', T + 1000), true);
        const b = await ds.getBundle('prune.test');
        assert.deepEqual(
          b?.x509Authorities.map((a) => Buffer.from(a.asn1).toString('hex')),
          [Buffer.from(late).toString('hex')],
        );
        assert.deepEqual(
          b?.jwtAuthorities.map((k) => k.keyId),
          ['j-late'],
        );
        assert.equal(b?.sequenceNumber, 2n);
        assert.equal(await ds.pruneBundle('prune.test', T + 20_000), false, 'the last X.509 authority stays');
        assert.equal((await ds.getBundle('prune.test'))?.x509Authorities.length, 1);
        assert.equal(await ds.pruneBundle('nothing.test', T), false);
        await ds.deleteBundle('prune.test');
      });

      it('sets, appends and counts with a sequence number that moves on every change', async () => {
        const b1 = await ds.setBundle({
          trustDomain: 'example.org',
          x509Authorities: [{ asn1: der(1), tainted: false }],
          jwtAuthorities: [{ publicKey: der(9), keyId: 'k1', expiresAt: 123, tainted: false }],
          refreshHint: 300,
        });
        assert.equal(b1.sequenceNumber, 1n);
        assert.deepEqual(await ds.getBundle('spiffe://example.org'), b1);
        assert.deepEqual(b1.x509Authorities[0]?.asn1, der(1));
        const same = await ds.appendBundle({
          trustDomain: 'example.org',
          x509Authorities: [{ asn1: der(1), tainted: false }],
          jwtAuthorities: [],
          refreshHint: 0,
        });
        assert.equal(same.sequenceNumber, 1n);
        const b2 = await ds.appendBundle({
          trustDomain: 'spiffe://example.org',
          x509Authorities: [
            { asn1: der(1), tainted: false },
            { asn1: der(2), tainted: false },
          ],
          jwtAuthorities: [{ publicKey: der(8), keyId: 'k2', expiresAt: 456, tainted: false }],
          refreshHint: 0,
        });
        assert.equal(b2.sequenceNumber, 2n);
        assert.equal(b2.refreshHint, 300);
        assert.deepEqual(
          b2.x509Authorities.map((a) => a.asn1[4]),
          [1, 2],
        );
        assert.deepEqual(
          b2.jwtAuthorities.map((k) => k.keyId),
          ['k1', 'k2'],
        );
        const b3 = await ds.setBundle({ ...b2, x509Authorities: [{ asn1: der(2), tainted: true }] });
        assert.equal(b3.sequenceNumber, 3n);
        assert.deepEqual(await ds.getBundle('example.org'), b3);
        const fed = await ds.appendBundle({ trustDomain: 'fed.org', x509Authorities: [{ asn1: der(5), tainted: false }], jwtAuthorities: [], refreshHint: 60 });
        assert.equal(fed.sequenceNumber, 1n);
        assert.equal(await ds.countBundles(), 2);
        const p1 = await ds.listBundles({ pageSize: 1 });
        const p2 = await ds.listBundles({ pageSize: 1, pageToken: p1.nextPageToken });
        assert.deepEqual(
          [...p1.bundles, ...p2.bundles].map((x) => x.trustDomain),
          ['example.org', 'fed.org'],
        );
        assert.equal(p2.nextPageToken, '');
        await ds.deleteBundle('fed.org');
        assert.equal(await ds.getBundle('fed.org'), null);
        await rejectsWith(ds.deleteBundle('fed.org'), 'ERR_NOT_FOUND');
        await rejectsWith(ds.setBundle({ trustDomain: '', x509Authorities: [], jwtAuthorities: [], refreshHint: 0 }), 'ERR_INVALID_ARGUMENT');
      });

      it('deletes a federated bundle per mode: restrict refuses, delete drops entries, dissociate unlinks them', async () => {
        const fedBundle = (td: string) => ({ trustDomain: td, x509Authorities: [{ asn1: der(7), tainted: false }], jwtAuthorities: [], refreshHint: 0 });
        for (const td of ['restrict.org', 'delete.org', 'dissociate.org', 'unused.org']) await ds.setBundle(fedBundle(td));
        const mk = (name: string, federatesWith: string[]) =>
          ds.createEntry({ spiffeId: `${TD}/fed-${name}`, parentId: `${TD}/spire/agent/fed`, selectors: [sel('fed', name)], federatesWith });
        const r1 = await mk('r1', ['spiffe://restrict.org']);
        const d1 = await mk('d1', ['spiffe://delete.org']);
        const d2 = await mk('d2', ['spiffe://delete.org', 'spiffe://dissociate.org']);
        const s1 = await mk('s1', ['spiffe://dissociate.org', 'spiffe://restrict.org']);
        const s2 = await mk('s2', ['dissociate.org']);
        const agentEntries = async (): Promise<string[]> => ids(await ds.listAuthorizedEntries(`${TD}/spire/agent/fed`, []));
        assert.deepEqual(await agentEntries(), ids([r1, d1, d2, s1, s2]));

        // restrict (also the default): refused while entries federate with it; nothing changes
        for (const mode of ['restrict', undefined] as const) {
          await rejectsWith(
            ds.deleteBundle('spiffe://restrict.org', mode),
            'ERR_FAILED_PRECONDITION',
            /cannot delete bundle; federated with 2 registration entries/,
          );
        }
        assert.notEqual(await ds.getBundle('restrict.org'), null);
        assert.deepEqual(await ds.getEntry(r1.id), r1);
        // restrict without users deletes
        await ds.deleteBundle('unused.org', 'restrict');
        assert.equal(await ds.getBundle('unused.org'), null);

        // delete: the bundle and every entry federating with it go, in one go
        await ds.deleteBundle('delete.org', 'delete');
        assert.equal(await ds.getBundle('delete.org'), null);
        assert.equal(await ds.getEntry(d1.id), null);
        assert.equal(await ds.getEntry(d2.id), null);
        assert.deepEqual(await agentEntries(), ids([r1, s1, s2]));

        // dissociate: the bundle goes, entries stay without that trust domain, revision moves on
        await ds.deleteBundle('spiffe://dissociate.org', 'dissociate');
        assert.equal(await ds.getBundle('dissociate.org'), null);
        const s1After = await ds.getEntry(s1.id);
        const s2After = await ds.getEntry(s2.id);
        assert.deepEqual(s1After?.federatesWith, ['spiffe://restrict.org']);
        assert.equal(s1After?.revisionNumber, s1.revisionNumber + 1);
        assert.deepEqual(s2After?.federatesWith, []);
        assert.equal(await ds.countEntries({ byFederatesWith: { trustDomains: ['dissociate.org'], match: 'ANY' } }), 0);
        assert.deepEqual(ids((await ds.listEntries({ byFederatesWith: { trustDomains: ['restrict.org'], match: 'ANY' } })).entries), ids([r1, s1]));
        const authorized = await ds.listAuthorizedEntries(`${TD}/spire/agent/fed`, []);
        assert.deepEqual(authorized.find((e) => e.id === s1.id)?.federatesWith, ['spiffe://restrict.org']);
        assert.deepEqual(ids(authorized), ids([r1, s1, s2]));

        // restrict now counts the one remaining user per trust domain; unknown bundles are NOT_FOUND in every mode
        await rejectsWith(ds.deleteBundle('restrict.org'), 'ERR_FAILED_PRECONDITION', /federated with 2 registration entries/);
        for (const mode of ['restrict', 'delete', 'dissociate'] as const) await rejectsWith(ds.deleteBundle('missing.org', mode), 'ERR_NOT_FOUND');
        await rejectsWith(ds.deleteBundle('restrict.org', 'bogus' as never), 'ERR_INVALID_ARGUMENT');
        // clean up for the tests below
        await ds.deleteBundle('restrict.org', 'dissociate');
        for (const e of [r1, s1, s2]) await ds.deleteEntry(e.id);
      });

      it('stores CA journal blobs by name', async () => {
        assert.equal(await ds.getCaJournal('server-ca'), null);
        const blob = new Uint8Array(70_000).map((_, i) => i % 251);
        await ds.setCaJournal('server-ca', blob);
        assert.deepEqual(await ds.getCaJournal('server-ca'), blob);
        await ds.setCaJournal('server-ca', new Uint8Array([1, 2, 3]));
        assert.deepEqual(await ds.getCaJournal('server-ca'), new Uint8Array([1, 2, 3]));
      });

      it('keeps everything across close and reopen', async () => {
        const e = await ds.createEntry({ spiffeId: `${TD}/persist`, parentId: `${TD}/agent`, selectors: [sel('p', 'p')] });
        await ds.createJoinToken({ token: 'persist', expiresAt: 9 });
        await ds.close();
        const again = await peer();
        opened.push(again);
        assert.deepEqual(await again.getEntry(e.id), e);
        assert.deepEqual(await again.getCaJournal('server-ca'), new Uint8Array([1, 2, 3]));
        assert.equal((await again.getBundle('example.org'))?.sequenceNumber, 3n);
        assert.deepEqual(await again.takeJoinToken('persist'), { token: 'persist', expiresAt: 9 });
        await rejectsWith(ds.getEntry(e.id), 'ERR_DATASTORE', /closed/);
      });
    });

    describe('federation relationships', () => {
      before(fresh);
      const der = (n: number): Uint8Array => new Uint8Array([0x30, 0x03, 0x02, 0x01, n]);
      const web = { trustDomain: 'web.test', bundleEndpointUrl: 'https://web.test/bundle', bundleEndpointProfile: 'https_web', endpointSpiffeId: '' } as const;
      const spf = {
        trustDomain: 'spiffe://spf.test',
        bundleEndpointUrl: 'https://127.0.0.1:8443',
        bundleEndpointProfile: 'https_spiffe',
        endpointSpiffeId: 'spiffe://spf.test/spire/server',
      } as const;

      it('creates, reads, pages, updates with a mask and deletes, keeping the bundle', async () => {
        const a = await ds.createFederationRelationship(web);
        assert.equal(a.trustDomain, 'web.test');
        const bootstrap = { trustDomain: 'spf.test', x509Authorities: [{ asn1: der(7), tainted: false }], jwtAuthorities: [], refreshHint: 60 };
        const b = await ds.createFederationRelationship(spf, bootstrap);
        assert.equal(b.trustDomain, 'spf.test');
        assert.deepEqual(
          (await ds.getBundle('spf.test'))?.x509Authorities.map((x) => x.asn1[4]),
          [7],
        );
        await rejectsWith(ds.createFederationRelationship(web), 'ERR_ALREADY_EXISTS', /UNIQUE constraint failed/);
        assert.deepEqual(await ds.getFederationRelationship('spiffe://web.test'), a);
        assert.equal(await ds.getFederationRelationship('none.test'), null);
        const p1 = await ds.listFederationRelationships({ pageSize: 1 });
        const p2 = await ds.listFederationRelationships({ pageSize: 1, pageToken: p1.nextPageToken });
        assert.deepEqual(
          [...p1.relationships, ...p2.relationships].map((r) => r.trustDomain),
          ['web.test', 'spf.test'],
        );
        assert.equal(p2.nextPageToken, '');
        const u = await ds.updateFederationRelationship(
          { trustDomain: 'spf.test', bundleEndpointUrl: 'https://other:1', bundleEndpointProfile: 'https_web', endpointSpiffeId: '' },
          { bundleEndpointUrl: true },
        );
        assert.equal(u.bundleEndpointUrl, 'https://other:1');
        assert.equal(u.bundleEndpointProfile, 'https_spiffe');
        assert.equal(u.endpointSpiffeId, 'spiffe://spf.test/spire/server');
        const v = await ds.updateFederationRelationship({ ...web, trustDomain: 'spf.test' }, { bundleEndpointProfile: true });
        assert.deepEqual([v.bundleEndpointUrl, v.bundleEndpointProfile, v.endpointSpiffeId], ['https://other:1', 'https_web', '']);
        await rejectsWith(ds.updateFederationRelationship({ ...web, trustDomain: 'none.test' }), 'ERR_NOT_FOUND');
        await rejectsWith(
          ds.createFederationRelationship({ ...spf, trustDomain: 'x.test', endpointSpiffeId: '' }),
          'ERR_INVALID_ARGUMENT',
          /SPIFFE ID is required/,
        );
        await rejectsWith(ds.createFederationRelationship({ ...web, trustDomain: 'y.test' }, { ...bootstrap }), 'ERR_INVALID_ARGUMENT', /must match/);
        assert.equal(await ds.getFederationRelationship('y.test'), null);
        await ds.deleteFederationRelationship('spf.test');
        await rejectsWith(ds.deleteFederationRelationship('spf.test'), 'ERR_NOT_FOUND');
        assert.notEqual(await ds.getBundle('spf.test'), null);
      });

      it("keeps a fetched bundle's spiffe_sequence beside the store sequence", async () => {
        const set = await ds.setBundle({
          trustDomain: 'seq.test',
          x509Authorities: [{ asn1: der(1), tainted: false }],
          jwtAuthorities: [],
          refreshHint: 5,
          spiffeSequence: 42n,
        });
        assert.equal(set.spiffeSequence, 42n);
        assert.equal((await ds.getBundle('seq.test'))?.spiffeSequence, 42n);
        const next = await ds.setBundle({ ...set, spiffeSequence: 43n });
        assert.equal(next.sequenceNumber, set.sequenceNumber + 1n);
        assert.equal(next.spiffeSequence, 43n);
      });
    });

    describe('concurrency', () => {
      before(fresh);

      it('admits exactly one of many concurrent similar creates', async () => {
        const other = await peer();
        opened.push(other);
        const attempts = Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? ds : other).createEntry({ spiffeId: `${TD}/race`, parentId: `${TD}/agent`, selectors: [sel('r', '1')] }),
        );
        const res = await Promise.allSettled(attempts);
        assert.equal(res.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of res) {
          if (r.status === 'rejected') assert.ok(r.reason instanceof SimilarEntryError, String(r.reason));
        }
        assert.equal(await ds.countEntries({ bySpiffeId: `${TD}/race` }), 1);
      });
    });
  });
}
