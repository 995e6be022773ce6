// PostgreSQL with a streaming replica (Debian's PostgreSQL, @ztwim/testkit/pg-replica): the host
// of a multi-host connection string is chosen by target_session_attrs, ro_connection_string's reads
// really go to the replica (and a replica that lags loses nothing), and a datastore on the
// multi-host string follows a fail-over (primary killed, replica promoted) without being reopened.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { cryptoRandom, isZtwimError, systemClock } from '@ztwim/core';
import { eventually } from '@ztwim/testkit';
import { startPgPrimaryReplica, type PgPair } from '@ztwim/testkit/pg-replica';
import type { Entry } from '../datastore.ts';
import { parsePgConnectionString, type TargetSessionAttrs } from './connection-string.ts';
import { PgHostPool } from './host-pool.ts';
import { PostgresDataStore } from './postgres-datastore.ts';

// ZTWIM_PG_DIR and ports of this branch's range (25480-25489), away from the other PostgreSQL suites.
const DIR = `${process.env['ZTWIM_PG_DIR'] ?? '/tmp/ztwim-pg-ha-pg'}/replica-unit`;
const PRIMARY_PORT = 25482;
const REPLICA_PORT = 25483;
const TD = 'spiffe://example.org';
const AGENT = `${TD}/spire/agent/x/1`;
const PRIMARY = `127.0.0.1:${PRIMARY_PORT}`;
const REPLICA = `127.0.0.1:${REPLICA_PORT}`;

const withParam = (url: string, k: string, v: string): string => {
  const u = new URL(url);
  u.searchParams.set(k, v);
  return u.toString();
};

async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

describe('PostgreSQL primary with a streaming replica', () => {
  let pair: PgPair;
  const stores: PostgresDataStore[] = [];
  const open = async (connectionString: string, roConnectionString?: string): Promise<PostgresDataStore> => {
    const s = await PostgresDataStore.open({
      connectionString,
      ...(roConnectionString === undefined ? {} : { roConnectionString }),
      maxOpenConns: 4,
      clock: systemClock,
      random: cryptoRandom,
    });
    stores.push(s);
    return s;
  };
  const entry = (store: PostgresDataStore, n: string): Promise<Entry> =>
    store.createEntry({ spiffeId: `${TD}/w/${n}`, parentId: AGENT, selectors: [{ type: 'unix', value: `uid:${n}` }] });
  const authorizedIds = async (store: PostgresDataStore): Promise<string[]> => (await store.listAuthorizedEntries(AGENT, [])).map((e) => e.id).sort();

  before(async () => {
    pair = await startPgPrimaryReplica({ dir: DIR, primaryPort: PRIMARY_PORT, replicaPort: REPLICA_PORT, synchronous: true });
  });

  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    await pair?.stop();
  });

  describe('choosing a host by target_session_attrs', () => {
    const both = (first: 'primary' | 'replica', attrs: TargetSessionAttrs): string => {
      const [a, b] = first === 'primary' ? [PRIMARY_PORT, REPLICA_PORT] : [REPLICA_PORT, PRIMARY_PORT];
      return `host=127.0.0.1,127.0.0.1 port=${a},${b} user=postgres dbname=ztwim sslmode=disable target_session_attrs=${attrs}`;
    };
    const cases: Array<{ first: 'primary' | 'replica'; attrs: TargetSessionAttrs; want: string }> = [
      { first: 'replica', attrs: 'read-write', want: PRIMARY },
      { first: 'replica', attrs: 'primary', want: PRIMARY },
      { first: 'replica', attrs: 'any', want: REPLICA },
      { first: 'primary', attrs: 'read-only', want: REPLICA },
      { first: 'primary', attrs: 'standby', want: REPLICA },
      { first: 'primary', attrs: 'prefer-standby', want: REPLICA },
      { first: 'primary', attrs: 'any', want: PRIMARY },
    ];
    for (const c of cases) {
      it(`${c.first} listed first, target_session_attrs=${c.attrs}: ${c.want === PRIMARY ? 'the primary' : 'the replica'}`, async () => {
        const hosts = new PgHostPool({
          spec: parsePgConnectionString(both(c.first, c.attrs)),
          pool: { max: 1 },
          connectTimeoutMs: 10_000,
          random: cryptoRandom,
        });
        try {
          const lease = await hosts.connect(() => false);
          const port = (await lease.client.query<{ p: string }>("SELECT current_setting('port') AS p")).rows[0]?.p;
          lease.client.release();
          assert.equal(hosts.host, c.want);
          assert.equal(`127.0.0.1:${port}`, c.want, 'the session is on the chosen host');
        } finally {
          await hosts.close();
        }
      });
    }

    it('load_balance_hosts=random: the hosts are tried in a random order', async () => {
      const chosen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const hosts = new PgHostPool({
          spec: parsePgConnectionString(`${both('primary', 'any')} load_balance_hosts=random`),
          pool: { max: 1 },
          connectTimeoutMs: 10_000,
          random: cryptoRandom,
        });
        try {
          (await hosts.connect(() => false)).client.release();
          chosen.add(hosts.host ?? '');
        } finally {
          await hosts.close();
        }
      }
      // Either host first with probability 1/2 each time: both within 20 rounds (all alike: p = 2^-19).
      assert.deepEqual([...chosen].sort(), [PRIMARY, REPLICA].sort());
    });

    it('prefer-standby takes the primary when no host is a standby; standby alone then fails naming each host', async () => {
      const primaryOnly = `host=127.0.0.1,127.0.0.1 port=${PRIMARY_PORT},25489 user=postgres dbname=ztwim sslmode=disable`;
      const prefer = new PgHostPool({
        spec: parsePgConnectionString(`${primaryOnly} target_session_attrs=prefer-standby`),
        pool: { max: 1 },
        connectTimeoutMs: 10_000,
        random: cryptoRandom,
      });
      const standby = new PgHostPool({
        spec: parsePgConnectionString(`${primaryOnly} target_session_attrs=standby`),
        pool: { max: 1 },
        connectTimeoutMs: 10_000,
        random: cryptoRandom,
      });
      try {
        (await prefer.connect(() => false)).client.release();
        assert.equal(prefer.host, PRIMARY);
        await assert.rejects(
          standby.connect(() => false),
          (e: unknown) => {
            assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), String(e));
            assert.match(e.message, /no host of the connection string accepts standby sessions/);
            assert.match(e.message, new RegExp(`${PRIMARY}: a read-write primary`));
            assert.match(e.message, /127\.0\.0\.1:25489: .*ECONNREFUSED/);
            return true;
          },
        );
      } finally {
        await prefer.close();
        await standby.close();
      }
    });
  });

  describe('ro_connection_string', () => {
    it("the entry index's full read goes to the replica, and changes the lagging replica has not replayed yet come from the primary", async () => {
      const writer = await open(pair.primaryUrl);
      const early = await entry(writer, 'early');
      // The replica has the early entry (synchronous replication flushes it there before the commit
      // returns; replaying it may take a moment more), then stops replaying.
      await eventually(
        'the early entry on the replica',
        async () => (await sql(pair.replicaUrl, `SELECT 1 FROM registered_entries WHERE entry_id = '${early.id}'`)).length > 0,
        {
          timeoutMs: 5_000,
          intervalMs: 50,
        },
      );
      await sql(pair.replicaUrl, 'SELECT pg_wal_replay_pause()');
      try {
        const late = await entry(writer, 'late');
        const gone = await entry(writer, 'gone');
        await writer.deleteEntry(gone.id);
        // The replica lags: it has not seen the late entry nor the deletion.
        assert.equal((await sql(pair.replicaUrl, `SELECT 1 FROM registered_entries WHERE entry_id = '${late.id}'`)).length, 0);
        assert.equal((await sql(pair.replicaUrl, `SELECT 1 FROM registered_entries WHERE entry_id = '${gone.id}'`)).length, 0);

        const reader = await open(pair.primaryUrl, withParam(pair.replicaUrl, 'application_name', 'ztwim-ro-test'));
        assert.deepEqual(await authorizedIds(reader), [early.id, late.id].sort());
        // The full read of registered_entries ran on the replica, under the ro string's application_name.
        const onReplica = await sql<{ query: string }>(pair.replicaUrl, "SELECT query FROM pg_stat_activity WHERE application_name = 'ztwim-ro-test'");
        assert.ok(
          onReplica.some((r) => /FROM registered_entries$/.test(r.query.trim())),
          `no full read of the entries on the replica: ${JSON.stringify(onReplica)}`,
        );
        assert.deepEqual(reader.hosts(), { primary: PRIMARY, readReplica: REPLICA });
        // Nothing under that name on the primary: the ro string is used for nothing else there.
        assert.deepEqual(await sql(pair.primaryUrl, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'ztwim-ro-test'"), []);
        // Writes and the other reads go to the primary even with a read replica configured.
        const fresh = await entry(reader, 'fresh');
        assert.equal((await reader.getEntry(fresh.id))?.id, fresh.id);
        assert.deepEqual(await authorizedIds(reader), [early.id, late.id, fresh.id].sort());
      } finally {
        await sql(pair.replicaUrl, 'SELECT pg_wal_replay_resume()');
      }
    });

    it('a read replica that is away: the index is read from the primary', async () => {
      const store = await open(pair.primaryUrl, 'postgres://postgres@127.0.0.1:25489/ztwim?sslmode=disable&connect_timeout=2');
      const e = await entry(store, 'no-replica');
      assert.ok((await authorizedIds(store)).includes(e.id));
    });
  });

  describe('fail-over: the primary killed, the replica promoted', () => {
    it('a datastore on the multi-host string reconnects to the promoted replica without being reopened, and loses no acknowledged write; callers queued on the lost pool choose again at once', async () => {
      const store = await open(pair.multiHostConnectionString);
      assert.deepEqual(store.hosts(), { primary: PRIMARY });
      const acked: string[] = [];
      for (let i = 0; i < 20; i++) acked.push((await entry(store, `before-${i}`)).id);

      // A pool of one connection, held, with callers queued behind it (connect timeout 20 s).
      const hosts = new PgHostPool({
        spec: parsePgConnectionString(pair.multiHostConnectionString),
        pool: { max: 1, connectionTimeoutMillis: 20_000 },
        connectTimeoutMs: 20_000,
        random: cryptoRandom,
      });
      const held = await hosts.connect(() => false);
      held.client.on('error', () => undefined); // its server goes: the query below gets the error
      const isConnErr = (e: unknown): boolean => /ECONNREFUSED|terminat|ECONNRESET/i.test(String(e));
      const queued = Array.from({ length: 5 }, () =>
        hosts.connect(isConnErr).then(
          (l) => {
            l.client.release();
            return 'served';
          },
          (e: unknown) => String(e),
        ),
      );

      await pair.killPrimary();
      // The held connection breaks; the callers queued on its pool choose again at once (no primary
      // now: they fail naming the hosts) instead of waiting out their 20 s connect timeout.
      const t0 = Date.now();
      await assert.rejects(held.client.query('SELECT 1'));
      hosts.dropped(held.pool, new Error('connection lost'));
      held.client.release(true);
      hosts.released(held.pool);
      const outcomes = await Promise.all(queued);
      assert.ok(Date.now() - t0 < 5_000, `queued callers settled after ${Date.now() - t0} ms`);
      for (const o of outcomes) assert.match(o, /no host of the connection string accepts read-write sessions/);
      await hosts.close();

      // While there is no primary: Unavailable, naming each host and why it was passed over.
      await assert.rejects(entry(store, 'down'), (e: unknown) => {
        assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), String(e));
        return true;
      });
      await assert.rejects(store.countEntries(), (e: unknown) => {
        assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), String(e));
        assert.match(e.message, /^datastore: postgres unavailable: no host of the connection string accepts read-write sessions/);
        assert.match(e.message, new RegExp(`${PRIMARY}: .*ECONNREFUSED`));
        assert.match(e.message, new RegExp(`${REPLICA}: a standby \\(in recovery, read-only\\)`));
        return true;
      });

      await pair.promoteReplica();
      const back = Date.now();
      acked.push((await entry(store, 'after')).id);
      assert.equal(store.hosts().primary, REPLICA);
      const all = new Set((await store.listEntries()).entries.map((e) => e.id));
      assert.deepEqual(
        acked.filter((id) => !all.has(id)),
        [],
        'acknowledged writes lost',
      );
      // The entry index caught up too.
      const authorized = new Set(await authorizedIds(store));
      assert.deepEqual(
        acked.filter((id) => !authorized.has(id)),
        [],
      );
      assert.ok(Date.now() - back < 10_000);
    });
  });
});
