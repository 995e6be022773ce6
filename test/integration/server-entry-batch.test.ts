// Entry API paths tuned by the server bench (bench/server.ts): BatchCreateEntry writes a request's
// valid entries in one datastore transaction while keeping SPIRE's per-entry results, and
// GetAuthorizedEntries answers from cached entries that still follow every change.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Code, createClient } from '@connectrpc/connect';
import { cryptoRandom, parseConfigText, silentLogger, systemClock } from '@ztwim/core';
import { createUnixGrpcTransport, AgentService, BundleService, EntryService, type GrpcClientTransport } from '@ztwim/proto';
import { buildServerConfig, SqliteDataStore, startServer, type DataStore, type RunningServer } from '@ztwim/server';
import { ServerClient, attestAgent } from '../../packages/agent/src/client/server-client.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { TrustDomain } from '@ztwim/spiffe';

const TD = 'example.org';
const id = (path: string): { trustDomain: string; path: string } => ({ trustDomain: TD, path });

/** Counts datastore write calls, passing everything through to the real store. */
function counting(ds: DataStore): { store: DataStore; calls: { createEntry: number; createEntries: number[] } } {
  const calls = { createEntry: 0, createEntries: [] as number[] };
  const store = new Proxy(ds, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      if (prop === 'createEntry') calls.createEntry++;
      if (prop === 'createEntries') {
        return (entries: readonly unknown[]) => {
          calls.createEntries.push(entries.length);
          return (v as (e: readonly unknown[]) => unknown).call(target, entries);
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { store, calls };
}

describe('server entry API: batched create, cached authorised entries', () => {
  let tmp: TmpDir;
  let server: RunningServer;
  let admin: GrpcClientTransport;
  let calls: { createEntry: number; createEntries: number[] };
  let ds: DataStore | undefined;

  before(async () => {
    tmp = makeTmpDir('ztwim-entry-batch-');
    const dataDir = join(tmp.path, 'data');
    mkdirSync(dataDir, { recursive: true });
    // Port 0 for the API and for the Prometheus listener (ztwim's default is 0.0.0.0:9402, which
    // anything else on the machine may hold).
    const conf = `server {
  bind_address = "127.0.0.1"
  bind_port = "0"
  socket_path = "${join(tmp.path, 'api.sock')}"
  trust_domain = "${TD}"
  data_dir = "${dataDir}"
}
plugins {
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
telemetry {
  Prometheus {
    host = "127.0.0.1"
    port = 0
  }
}
`;
    ds = await SqliteDataStore.open({ path: join(dataDir, 'datastore.sqlite3'), clock: systemClock, random: cryptoRandom });
    const c = counting(ds);
    calls = c.calls;
    server = await startServer(buildServerConfig(parseConfigText(conf, 'hcl'), 'server.conf'), { log: silentLogger(), dataStore: c.store });
    admin = createUnixGrpcTransport(server.socketPath);
  });

  after(async () => {
    admin?.close();
    await server?.close();
    await ds?.close(); // the server does not close a datastore it was handed
    tmp?.cleanup();
  });

  it('BatchCreateEntry: per-entry results in request order, valid entries written in one transaction', async () => {
    const entries = createClient(EntryService, admin);
    const pre = await entries.batchCreateEntry({ entries: [{ spiffeId: id('/pre'), parentId: id('/p'), selectors: [{ type: 'unix', value: 'uid:0' }] }] });
    const preId = pre.results[0]?.entry?.id ?? '';
    assert.notEqual(preId, '');
    calls.createEntry = 0;
    calls.createEntries.length = 0;

    const r = await entries.batchCreateEntry({
      entries: [
        { spiffeId: id('/a'), parentId: id('/p'), selectors: [{ type: 'unix', value: 'uid:1' }] },
        { spiffeId: { trustDomain: 'Bad Domain', path: '/x' }, parentId: id('/p'), selectors: [{ type: 'unix', value: 'uid:1' }] },
        // Similar to the first one of this request (same ID, parent, selectors in another order).
        {
          spiffeId: id('/b'),
          parentId: id('/p'),
          selectors: [
            { type: 'unix', value: 'uid:2' },
            { type: 'unix', value: 'gid:2' },
          ],
        },
        {
          spiffeId: id('/b'),
          parentId: id('/p'),
          selectors: [
            { type: 'unix', value: 'gid:2' },
            { type: 'unix', value: 'uid:2' },
          ],
        },
        // Similar to an entry stored before the request.
        { spiffeId: id('/pre'), parentId: id('/p'), selectors: [{ type: 'unix', value: 'uid:0' }] },
        // A custom ID already taken.
        { id: preId, spiffeId: id('/c'), parentId: id('/p'), selectors: [{ type: 'unix', value: 'uid:3' }] },
        { id: 'my-custom-id', spiffeId: id('/d'), parentId: id('/p'), selectors: [{ type: 'unix', value: 'uid:4' }], x509SvidTtl: 120 },
      ],
    });
    assert.deepEqual(
      r.results.map((x) => x.status?.code),
      [0, Code.InvalidArgument, 0, Code.AlreadyExists, Code.AlreadyExists, Code.AlreadyExists, 0],
    );
    const [a, , b, bDup, preDup, taken, d] = r.results;
    assert.equal(bDup?.status?.message, 'similar entry already exists');
    assert.equal(bDup?.entry?.id, b?.entry?.id, 'the duplicate names the entry created earlier in the same request');
    assert.equal(preDup?.entry?.id, preId);
    assert.match(taken?.status?.message ?? '', /^failed to create entry: /);
    assert.equal(taken?.entry, undefined);
    assert.equal(d?.entry?.id, 'my-custom-id');
    assert.equal(d?.entry?.x509SvidTtl, 120);
    assert.equal(a?.entry?.spiffeId?.path, '/a');
    // One datastore call for the six convertible entries, none entry by entry.
    assert.deepEqual(calls.createEntries, [6]);
    assert.equal(calls.createEntry, 0);
    const list = await entries.listEntries({ pageSize: 100 });
    assert.deepEqual(list.entries.map((e) => e.spiffeId?.path).sort(), ['/a', '/b', '/d', '/pre']);
  });

  it('GetAuthorizedEntries follows updates and deletes of entries it has already answered with', async () => {
    const entries = createClient(EntryService, admin);
    const token = 'entry-batch-agent';
    await createClient(AgentService, admin).createJoinToken({ ttl: 600, token });
    const agentPath = `/spire/agent/join_token/${token}`;
    const made = await entries.batchCreateEntry({
      entries: [
        { spiffeId: id('/w1'), parentId: id(agentPath), selectors: [{ type: 'unix', value: 'uid:1' }] },
        { spiffeId: id('/w2'), parentId: id(agentPath), selectors: [{ type: 'unix', value: 'uid:2' }] },
        { spiffeId: id('/w2/child'), parentId: id('/w2'), selectors: [{ type: 'unix', value: 'uid:3' }] },
      ],
    });
    const [w1 = '', w2 = '', child = ''] = made.results.map((x) => x.entry?.id ?? '');
    const bundle = await createClient(BundleService, admin).getBundle({});
    const opts = { host: '127.0.0.1', port: server.port, trustDomain: TrustDomain.parse(TD), roots: bundle.x509Authorities.map((x) => x.asn1) };
    const boot = new ServerClient(opts);
    const creds = await attestAgent(boot, { type: 'join_token', token });
    boot.close();
    const agent = new ServerClient(opts, creds);
    try {
      const byId = async (): Promise<Map<string, { ttl: number; dns: string[] }>> => {
        const r = await agent.entry.getAuthorizedEntries({});
        return new Map(r.entries.map((e) => [e.id, { ttl: e.x509SvidTtl, dns: e.dnsNames }]));
      };
      assert.deepEqual([...(await byId()).keys()].sort(), [w1, w2, child].sort());
      assert.deepEqual([...(await byId()).keys()].sort(), [w1, w2, child].sort(), 'same answer from the cache');
      // The answer is sent pre-encoded: it decodes to exactly what GetEntry gives, field by field.
      const answered = await agent.entry.getAuthorizedEntries({});
      for (const e of answered.entries) assert.deepEqual(e, await entries.getEntry({ id: e.id }));
      const masked = await agent.entry.getAuthorizedEntries({ outputMask: { spiffeId: true } });
      assert.deepEqual(
        masked.entries.map((e) => [e.id, e.selectors.length, e.spiffeId?.path]).sort(),
        [
          [child, 0, '/w2/child'],
          [w1, 0, '/w1'],
          [w2, 0, '/w2'],
        ].sort(),
      );

      const upd = await entries.batchUpdateEntry({
        entries: [{ id: w1, x509SvidTtl: 777, dnsNames: ['w1.example.org'] }],
        inputMask: { x509SvidTtl: true, dnsNames: true },
      });
      assert.equal(upd.results[0]?.status?.code, 0, upd.results[0]?.status?.message);
      assert.deepEqual((await byId()).get(w1), { ttl: 777, dns: ['w1.example.org'] });

      const del = await entries.batchDeleteEntry({ ids: [w2] });
      assert.equal(del.results[0]?.status?.code, 0);
      // The child hangs under the deleted entry's SPIFFE ID: it is no longer reachable either.
      assert.deepEqual([...(await byId()).keys()], [w1]);
    } finally {
      agent.close();
    }
  });
});
