// A ztwim server on a real PostgreSQL that goes away and comes back: while it is down the admin
// API answers with Unavailable naming the datastore and the health check says NOT_SERVING; the
// server process keeps running, reconnects by itself once PostgreSQL is back on the same port,
// and every write it acknowledged before or during the outage is still there.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { rootCommand, runCaptured } from '@ztwim/cli';
import { BundleService, EntryService, HealthCheckResponse_ServingStatus, HealthService, createUnixGrpcTransport, type GrpcClientTransport } from '@ztwim/proto';
import { eventually } from '@ztwim/testkit';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

const script = new URL('../../scripts/pg-test-server.sh', import.meta.url).pathname;
// A cluster of its own: the datastore unit suite stops and starts the ones on 25432/25433.
const PG_ENV = { ZTWIM_PG_DIR: '/tmp/ztwim-pg-server-outage', ZTWIM_PG_PORT: '25434', ZTWIM_PG_DB: 'ztwim_outage' };
const AGENT = 'spiffe://example.org/spire/agent/join_token/outage';

function pgctl(cmd: 'start' | 'stop', mode?: 'fast' | 'immediate'): string {
  try {
    return (
      execFileSync('bash', [script, cmd], {
        env: { ...process.env, ...PG_ENV, ...(mode === undefined ? {} : { ZTWIM_PG_STOP_MODE: mode }) },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 600_000,
      })
        .trim()
        .split('\n')
        .pop() ?? ''
    );
  } catch (e) {
    throw new Error(`${script} ${cmd} failed: ${(e as { stderr?: string }).stderr ?? String(e)}`);
  }
}

const cli = (args: readonly string[]) => runCaptured(rootCommand(), ['server', ...args]);

describe('server on PostgreSQL: the database goes away and comes back', () => {
  let url = '';
  let schema = '';
  let srv: ZtwimAdminServer | undefined;
  let admin: GrpcClientTransport;

  before(async () => {
    url = pgctl('start');
    schema = `outage_${process.pid}_${Date.now().toString(36)}`;
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.end();
    const u = new URL(url);
    u.searchParams.set('options', `-c search_path=${schema}`);
    srv = await startZtwimAdminServer({
      dataStorePluginData: `      database_type = "postgres"\n      connection_string = "${u.toString()}"\n      max_open_conns = 8`,
    });
    admin = createUnixGrpcTransport(srv.socketPath);
  });

  after(async () => {
    admin?.close();
    await srv?.stop();
    try {
      pgctl('start');
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    } finally {
      pgctl('stop');
    }
  });

  const entries = () => createClient(EntryService, admin);
  const health = async () => (await createClient(HealthService, admin).check({})).status;

  async function create(path: string): Promise<{ code: number; message: string; id: string }> {
    const r = await entries().batchCreateEntry({
      entries: [
        {
          spiffeId: { trustDomain: 'example.org', path },
          parentId: { trustDomain: 'example.org', path: '/spire/agent/join_token/outage' },
          selectors: [{ type: 'unix', value: `uid:${path}` }],
        },
      ],
    });
    const x = r.results[0];
    return { code: x?.status?.code ?? -1, message: x?.status?.message ?? '', id: x?.entry?.id ?? '' };
  }

  async function expectUnavailable(call: () => Promise<unknown>, name: string): Promise<void> {
    await assert.rejects(call(), (e: unknown) => {
      assert.ok(e instanceof ConnectError, `${name}: ${String(e)}`);
      assert.equal(e.code, Code.Unavailable, `${name}: ${e.message}`);
      assert.match(e.rawMessage, /^datastore: postgres unavailable: /, name);
      return true;
    });
  }

  for (const mode of ['fast', 'immediate'] as const) {
    it(`pg_ctl stop -m ${mode}: clear Unavailable errors, NOT_SERVING, then reconnects without a restart and keeps every acknowledged write`, async () => {
      assert.ok(srv !== undefined);
      const acked: string[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await create(`/${mode}/before/${i}`);
        assert.equal(r.code, 0, r.message);
        acked.push(r.id);
      }
      assert.equal(await health(), HealthCheckResponse_ServingStatus.SERVING);

      // A writer keeps going through the outage; what it got acknowledged must survive.
      let writing = true;
      let failures = 0;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          const r = await create(`/${mode}/during/${i}`);
          if (r.code === 0) acked.push(r.id);
          else {
            failures++;
            assert.equal(r.code, Code.Unavailable, r.message);
            // a client retrying through the outage is the behaviour under test: 20 ms between its tries
            await new Promise((res) => setTimeout(res, 20));
          }
        }
      })();

      pgctl('stop', mode);
      let r = await create(`/${mode}/down`);
      assert.equal(r.code, Code.Unavailable, r.message);
      assert.match(r.message, /^datastore: postgres unavailable: /);
      await expectUnavailable(() => entries().countEntries({}), 'CountEntries');
      await expectUnavailable(() => entries().listEntries({}), 'ListEntries');
      await expectUnavailable(() => createClient(BundleService, admin).getBundle({}), 'GetBundle');
      assert.equal(await health(), HealthCheckResponse_ServingStatus.NOT_SERVING);
      const hc = await cli(['healthcheck', '-socketPath', srv.socketPath]);
      assert.equal(hc.status, 1);
      assert.equal(hc.stderr, 'Error: server is unhealthy: server returned status "NOT_SERVING"\n');
      const show = await cli(['entry', 'count', '-socketPath', srv.socketPath]);
      assert.equal(show.status, 1);
      assert.match(show.stderr, /datastore: postgres unavailable/);

      pgctl('start');
      // The pool reconnects on the next use: no server restart.
      await eventually('the server to reconnect to PostgreSQL', async () => (await health()) === HealthCheckResponse_ServingStatus.SERVING, {
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      writing = false;
      await writer;
      assert.ok(failures > 0, 'the writer saw the outage');
      r = await create(`/${mode}/after`);
      assert.equal(r.code, 0, r.message);
      acked.push(r.id);

      const present = new Set<string>();
      let pageToken = '';
      do {
        const page = await entries().listEntries({ pageSize: 500, pageToken });
        for (const e of page.entries) present.add(e.id);
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      assert.deepEqual(
        acked.filter((id) => !present.has(id)),
        [],
        'acknowledged writes lost',
      );
      // The authorised-entry index caught up with what happened around the outage too.
      const authorized = new Set((await srv.server.dataStore.listAuthorizedEntries(AGENT, [])).map((e) => e.id));
      assert.deepEqual(
        [...present].filter((id) => !authorized.has(id)),
        [],
      );
      const done = await Promise.race([srv.server.done.then(() => 'stopped'), Promise.resolve('running')]);
      assert.equal(done, 'running');
    });
  }
});
