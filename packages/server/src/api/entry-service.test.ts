import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import {
  BatchCreateEntryRequestSchema,
  BatchUpdateEntryRequestSchema,
  EntrySchema,
  EntryService,
  GetAuthorizedEntriesResponseSchema,
  SPIFFEIDSchema,
  SelectorSchema,
  encodingOf,
} from '@ztwim/proto';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import { handlerContext } from './handler-context.test-util.ts';
import type { DataStore } from '../datastore/datastore.ts';
import { AuthorizedAnswers, entryService, prepareAuthorizedAnswer } from './entry-service.ts';

test('GetAuthorizedEntries: the pre-made encoding is byte for byte the message encoding, and follows entry changes', async () => {
  await withTempSqliteStore(async (ds) => {
    const agent = 'spiffe://example.org/spire/agent/join_token/t';
    for (let i = 0; i < 50; i++) {
      await ds.createEntry({
        spiffeId: `spiffe://example.org/w/${i}`,
        parentId: agent,
        selectors: [{ type: 'unix', value: `uid:${i}` }],
        dnsNames: i % 2 === 0 ? [`w${i}.example.org`] : [],
        hint: `h${i}`,
      });
    }
    await ds.createEntry({
      spiffeId: 'spiffe://example.org/other',
      parentId: 'spiffe://example.org/spire/agent/join_token/u',
      selectors: [{ type: 'unix', value: 'uid:1' }],
    });
    const svc = entryService({ dataStore: ds, trustDomain: TrustDomain.parse('example.org'), nodeSelectors: async () => [] });
    const call = async () => {
      const ctx = handlerContext(EntryService, EntryService.method.getAuthorizedEntries, {
        caller: { local: false, admin: false, remoteAddress: '', agentId: SpiffeId.parse(agent) },
      });
      const res = await svc.getAuthorizedEntries!({ $typeName: 'spire.api.server.entry.v1.GetAuthorizedEntriesRequest' } as never, ctx);
      return res as ReturnType<typeof fromBinary<typeof GetAuthorizedEntriesResponseSchema>>;
    };
    const first = await call();
    const bytes = encodingOf(first);
    assert.ok(bytes !== undefined, 'the answer carries its encoding');
    assert.deepEqual(Buffer.from(toBinary(GetAuthorizedEntriesResponseSchema, first)), Buffer.from(bytes), 'toBinary of the message gives the same bytes');
    const decoded = fromBinary(GetAuthorizedEntriesResponseSchema, bytes);
    assert.equal(decoded.entries.length, 50);
    assert.deepEqual(
      new Set(decoded.entries.map((e) => `${e.spiffeId?.path}|${e.hint}|${e.dnsNames.join(',')}`)),
      new Set(Array.from({ length: 50 }, (_, i) => `/w/${i}|h${i}|${i % 2 === 0 ? `w${i}.example.org` : ''}`)),
    );

    // An entry change reaches the next answer (its encoding is not reused).
    const target = decoded.entries.find((e) => e.spiffeId?.path === '/w/7');
    assert.ok(target !== undefined);
    await ds.updateEntry({ id: target.id, hint: 'changed' }, { hint: true });
    const second = await call();
    const again = fromBinary(GetAuthorizedEntriesResponseSchema, encodingOf(second) ?? new Uint8Array());
    assert.equal(again.entries.find((e) => e.id === target.id)?.hint, 'changed');
    assert.deepEqual(Buffer.from(toBinary(GetAuthorizedEntriesResponseSchema, second)), Buffer.from(encodingOf(second) ?? []));
  });
});

test('GetAuthorizedEntries after prepareAuthorizedAnswer: the prepared answer while nothing changed, a fresh one after a change', async () => {
  await withTempSqliteStore(async (store) => {
    const agent = 'spiffe://example.org/spire/agent/join_token/new';
    for (let i = 0; i < 20; i++) {
      await store.createEntry({ spiffeId: `spiffe://example.org/n/${i}`, parentId: agent, selectors: [{ type: 'unix', value: `uid:${i}` }] });
    }
    // Every authorised-entry list the store hands out, in order.
    const lists: Array<readonly unknown[]> = [];
    const ds = new Proxy(store, {
      get(t, p) {
        if (p === 'listAuthorizedEntries') {
          return async (...a: Parameters<DataStore['listAuthorizedEntries']>) => {
            const r = await t.listAuthorizedEntries(...a);
            lists.push(r);
            return r;
          };
        }
        const v: unknown = Reflect.get(t, p);
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
      },
    });
    const answers = new AuthorizedAnswers();
    const nodeSelectors = async (): Promise<Array<{ type: string; value: string }>> => [];
    const svc = entryService({ dataStore: ds, trustDomain: TrustDomain.parse('example.org'), nodeSelectors, answers });
    const call = async () => {
      const ctx = handlerContext(EntryService, EntryService.method.getAuthorizedEntries, {
        caller: { local: false, admin: false, remoteAddress: '', agentId: SpiffeId.parse(agent) },
      });
      return (await svc.getAuthorizedEntries!({} as never, ctx)) as ReturnType<typeof fromBinary<typeof GetAuthorizedEntriesResponseSchema>>;
    };

    await prepareAuthorizedAnswer({ dataStore: ds, nodeSelectors, answers }, agent);
    const first = await call();
    assert.equal(lists.length, 2);
    assert.equal(lists[1], lists[0], 'the call found the list the preparation computed');
    assert.equal(first, answers.encoded(lists[0] as never), 'and the response the preparation encoded');
    const decoded = fromBinary(GetAuthorizedEntriesResponseSchema, encodingOf(first) ?? new Uint8Array());
    assert.deepEqual(decoded.entries.map((e) => e.spiffeId?.path).sort(), Array.from({ length: 20 }, (_, i) => `/n/${i}`).sort());
    assert.deepEqual(Buffer.from(toBinary(GetAuthorizedEntriesResponseSchema, first)), Buffer.from(encodingOf(first) ?? []));

    // Prepared, then an entry changes before the agent calls: the call answers the change.
    await prepareAuthorizedAnswer({ dataStore: ds, nodeSelectors, answers }, agent);
    const target = decoded.entries[3];
    assert.ok(target !== undefined);
    await store.updateEntry({ id: target.id, hint: 'after' }, { hint: true });
    const second = await call();
    assert.notEqual(second, first);
    const again = fromBinary(GetAuthorizedEntriesResponseSchema, encodingOf(second) ?? new Uint8Array());
    assert.equal(again.entries.find((e) => e.id === target.id)?.hint, 'after');
    assert.equal(again.entries.length, 20);
  });
});

test('GetAuthorizedEntries for an agent with no entries: an empty answer, encoded as such', async () => {
  await withTempSqliteStore(async (ds) => {
    const svc = entryService({ dataStore: ds, trustDomain: TrustDomain.parse('example.org'), nodeSelectors: async () => [] });
    const ctx = handlerContext(EntryService, EntryService.method.getAuthorizedEntries, {
      caller: { local: false, admin: false, remoteAddress: '', agentId: SpiffeId.parse('spiffe://example.org/spire/agent/x') },
    });
    const res = await svc.getAuthorizedEntries!({} as never, ctx);
    assert.equal(encodingOf(res as never)?.length, 0);
    assert.equal(toBinary(GetAuthorizedEntriesResponseSchema, res as never).length, 0);
  });
});

test('federating with a trust domain without a bundle: spire-server texts, no datastore layer name', async () => {
  await withTempSqliteStore(async (ds) => {
    const svc = entryService({ dataStore: ds, trustDomain: TrustDomain.parse('example.org'), nodeSelectors: async () => [] });
    const ctx = (method: typeof EntryService.method.batchCreateEntry | typeof EntryService.method.batchUpdateEntry) =>
      handlerContext(EntryService, method, { caller: { local: true, admin: true, remoteAddress: '' } });
    const entry = {
      spiffeId: create(SPIFFEIDSchema, { trustDomain: 'example.org', path: '/w' }),
      parentId: create(SPIFFEIDSchema, { trustDomain: 'example.org', path: '/p' }),
      selectors: [create(SelectorSchema, { type: 'unix', value: 'uid:1' })],
    };
    const created = (await svc.batchCreateEntry!(
      create(BatchCreateEntryRequestSchema, {
        entries: [create(EntrySchema, { ...entry, federatesWith: ['spiffe://other.org'] }), create(EntrySchema, entry)],
      }),
      ctx(EntryService.method.batchCreateEntry),
    )) as { results: Array<{ status?: { code: number; message: string }; entry?: { id: string } }> };
    assert.equal(created.results[0]?.status?.message, 'failed to create entry: unable to find federated bundle "spiffe://other.org"');
    const id = created.results[1]?.entry?.id;
    assert.ok(id !== undefined && id !== '');
    const updated = (await svc.batchUpdateEntry!(
      create(BatchUpdateEntryRequestSchema, {
        entries: [create(EntrySchema, { ...entry, id, federatesWith: ['spiffe://other.org'] })],
      }),
      ctx(EntryService.method.batchUpdateEntry),
    )) as { results: Array<{ status?: { code: number; message: string } }> };
    assert.equal(updated.results[0]?.status?.code, 13);
    assert.equal(updated.results[0]?.status?.message, 'failed to update entry: unable to find federated bundle "spiffe://other.org"');
  });
});
