import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { cryptoRandom, isZtwimError, systemClock } from '@ztwim/core';
import { runDataStoreContract } from '../datastore.test-suite.ts';
import { SCHEMA_VERSION } from '../sql/schema.ts';
import { startPgCluster } from './pg-cluster.test-util.ts';
import { PostgresDataStore } from './postgres-datastore.ts';

const script = new URL('../../../../../scripts/pg-test-server.sh', import.meta.url).pathname;

/** Starts (installing if needed) the throwaway cluster; fails the suite with the script's message. */
const startServer = (env: Record<string, string> = {}): string => startPgCluster(env);

function stopServer(env: Record<string, string>): void {
  execFileSync('bash', [script, 'stop'], { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 120_000 });
}

/** A connection string whose search_path is a fresh schema, so each store starts empty. */
async function freshSchema(admin: pg.Pool, url: string, tag: string): Promise<string> {
  const schema = `t_${process.pid}_${tag}_${Date.now().toString(36)}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  schemas.push(schema);
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

const schemas: string[] = [];
let url = '';
let admin: pg.Pool;
let n = 0;

before(async () => {
  url = startServer();
  admin = new pg.Pool({ connectionString: url, max: 2 });
});

after(async () => {
  for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await admin.end();
});

runDataStoreContract('postgres', async ({ clock, random }) => {
  const connectionString = await freshSchema(admin, url, String(n++));
  const opts = { connectionString, maxOpenConns: 10, maxIdleConns: 2, clock, random };
  const store = await PostgresDataStore.open(opts);
  return { store, peer: () => PostgresDataStore.open(opts) };
});

describe('PostgresDataStore', () => {
  it('migrates once, and refuses a schema newer than this code', async () => {
    const connectionString = await freshSchema(admin, url, 'newer');
    const opts = { connectionString, clock: systemClock, random: cryptoRandom };
    // Two servers opening at once: the advisory lock makes one of them migrate.
    const [a, b] = await Promise.all([PostgresDataStore.open(opts), PostgresDataStore.open(opts)]);
    await a.close();
    await b.close();
    const c = new pg.Client({ connectionString });
    await c.connect();
    try {
      const rows = (await c.query('SELECT version FROM migrations ORDER BY version')).rows as Array<{ version: number }>;
      assert.deepEqual(
        rows.map((r) => r.version),
        Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
      );
      await c.query("INSERT INTO migrations (version, code_version, applied_at) VALUES ($1, '9.9.9', 0)", [SCHEMA_VERSION + 1]);
    } finally {
      await c.end();
    }
    await assert.rejects(PostgresDataStore.open(opts), (e: unknown) => {
      assert.ok(isZtwimError(e, 'ERR_DATASTORE'));
      assert.match(e.message, /newer than this ztwim supports/);
      return true;
    });
  });

  it("opens with SPIRE's documented keyword/value connection_string (quoted options, sslmode=disable and libpq's default prefer)", async () => {
    const u = new URL(await freshSchema(admin, url, 'kv'));
    const schema = /search_path=(\S+)/.exec(u.searchParams.get('options') ?? '')?.[1] ?? '';
    for (const ssl of ['sslmode=disable', '']) {
      // the test cluster has no TLS: prefer falls back to a plain connection as libpq does
      const connectionString = `dbname=${u.pathname.slice(1)} user=${decodeURIComponent(u.username)} host=${u.hostname} port=${u.port} ${ssl} options='-c search_path=${schema}'`;
      const ds = await PostgresDataStore.open({ connectionString, clock: systemClock, random: cryptoRandom });
      try {
        await ds.createEntry({ spiffeId: `spiffe://example.org/kv${ssl.length}`, parentId: 'spiffe://example.org/a', selectors: [{ type: 'kv', value: ssl }] });
      } finally {
        await ds.close();
      }
    }
    const c = new pg.Client({ connectionString: u.toString() });
    await c.connect();
    try {
      assert.equal(Number((await c.query('SELECT count(*) AS n FROM registered_entries')).rows[0].n), 2);
    } finally {
      await c.end();
    }
  });

  it('fails to open with ERR_UNAVAILABLE when nothing listens', async () => {
    await assert.rejects(
      PostgresDataStore.open({
        connectionString: 'postgres://postgres@127.0.0.1:1/none',
        clock: systemClock,
        random: cryptoRandom,
      }),
      (e: unknown) => {
        assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), String(e));
        assert.match(e.message, /^datastore: postgres unavailable: /);
        return true;
      },
    );
  });

  it('runs more concurrent operations than maxOpenConns, keeping at most maxIdleConns idle', async () => {
    const app = `ztwim-pool-${process.pid}`;
    const u = new URL(await freshSchema(admin, url, 'pool'));
    u.searchParams.set('application_name', app);
    const connectionString = u.toString();
    const ds = await PostgresDataStore.open({ connectionString, maxOpenConns: 2, maxIdleConns: 1, clock: systemClock, random: cryptoRandom });
    try {
      const created = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          ds.createEntry({ spiffeId: `spiffe://example.org/p${i}`, parentId: 'spiffe://example.org/a', selectors: [{ type: 'p', value: String(i) }] }),
        ),
      );
      assert.equal(created.length, 20);
      assert.equal(await ds.countEntries(), 20);
      const count = async (): Promise<number> =>
        (
          (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0] as {
            n: number;
          }
        ).n;
      // Connections beyond maxIdleConns are closed on release (asynchronously: poll, no sleep).
      let open = await count();
      for (let i = 0; i < 500 && open > 1; i++) open = await count();
      assert.equal(open, 1);
    } finally {
      await ds.close();
    }
  });

  it('authorised-entry index picks up a write that committed after a later one (event id gap)', async () => {
    const connectionString = await freshSchema(admin, url, 'gap');
    const ds = await PostgresDataStore.open({ connectionString, clock: systemClock, random: cryptoRandom });
    const agent = 'spiffe://example.org/spire/agent/x509pop/gap';
    const slow = new pg.Client({ connectionString });
    await slow.connect();
    try {
      await ds.createEntry({ spiffeId: 'spiffe://example.org/first', parentId: agent, selectors: [{ type: 'g', value: '1' }] });
      assert.equal((await ds.listAuthorizedEntries(agent, [])).length, 1);
      // A writer takes the next event id but commits late (as another server's transaction would).
      await slow.query('BEGIN');
      const seq = await slow.query(
        'INSERT INTO registered_entries (entry_id, spiffe_id, parent_id, selector_key, x509_svid_ttl, jwt_svid_ttl, admin, downstream, ' +
          "expires_at, revision_number, store_svid, hint, created_at, updated_at, selectors, dns_names, federates_with) VALUES ('slow', " +
          "'spiffe://example.org/slow', $1, '[]', 0, 0, 0, 0, 0, 0, 0, '', 0, 0, '[{\"type\":\"g\",\"value\":\"s\"}]', '[]', '[]') RETURNING seq",
        [agent],
      );
      await slow.query("INSERT INTO entry_events (entry_id, created_at) VALUES ('slow', 0)");
      assert.ok(seq.rowCount === 1);
      await ds.createEntry({ spiffeId: 'spiffe://example.org/fast', parentId: agent, selectors: [{ type: 'g', value: '2' }] });
      assert.deepEqual((await ds.listAuthorizedEntries(agent, [])).map((e) => e.spiffeId).sort(), ['spiffe://example.org/fast', 'spiffe://example.org/first']);
      await slow.query('COMMIT');
      assert.deepEqual((await ds.listAuthorizedEntries(agent, [])).map((e) => e.spiffeId).sort(), [
        'spiffe://example.org/fast',
        'spiffe://example.org/first',
        'spiffe://example.org/slow',
      ]);
    } finally {
      await slow.end();
      await ds.close();
    }
  });

  describe('server restart', () => {
    const env = { ZTWIM_PG_DIR: '/tmp/ztwim-pg-fault', ZTWIM_PG_PORT: '25433' };
    let faultUrl = '';
    let ds: PostgresDataStore;

    before(async () => {
      faultUrl = startServer(env);
      const connectionString = await (async () => {
        const p = new pg.Pool({ connectionString: faultUrl, max: 1 });
        try {
          return await freshSchema(p, faultUrl, 'restart');
        } finally {
          await p.end();
        }
      })();
      ds = await PostgresDataStore.open({ connectionString, maxOpenConns: 4, maxIdleConns: 2, clock: systemClock, random: cryptoRandom });
    });

    after(async () => {
      await ds?.close();
      startServer(env);
    });

    it('errors clearly while PostgreSQL is down and recovers without losing committed writes', async () => {
      const committed: string[] = [];
      const write = async (i: number): Promise<void> => {
        const e = await ds.createEntry({
          spiffeId: `spiffe://example.org/r${i}`,
          parentId: 'spiffe://example.org/agent',
          selectors: [{ type: 'r', value: String(i) }],
        });
        committed.push(e.id);
      };
      for (let i = 0; i < 50; i++) await write(i);
      // Warm idle connections, which the shutdown will terminate under the pool.
      await Promise.all([ds.countEntries(), ds.countEntries(), ds.countEntries()]);

      stopServer(env);
      for (const op of [() => write(1000), () => ds.countEntries(), () => ds.listAuthorizedEntries('spiffe://example.org/agent', [])]) {
        await assert.rejects(op(), (e: unknown) => {
          assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), `expected ERR_UNAVAILABLE, got ${String(e)}`);
          assert.match(e.message, /^datastore: postgres unavailable: /);
          return true;
        });
      }

      startServer(env);
      for (let i = 50; i < 60; i++) await write(i);
      const present = new Set((await ds.listEntries()).entries.map((e) => e.id));
      assert.deepEqual(
        committed.filter((id) => !present.has(id)),
        [],
      );
      assert.equal(present.size, 60);
      assert.equal((await ds.listAuthorizedEntries('spiffe://example.org/agent', [])).length, 60);
    });
  });
});
