// SPIRE's `health_checks { listener_enabled bind_address bind_port live_path ready_path }`: the
// server answers its live and ready paths over HTTP (the operator's StatefulSet probes them).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { cryptoRandom, silentLogger, systemClock, ZTWIM_VERSION } from '@ztwim/core';
import { createUnixGrpcTransport, ServerInfoService } from '@ztwim/proto';
import { buildServerConfig, SqliteDataStore, startServer } from '@ztwim/server';
import { freePort } from '../interop/lib/net.ts';
import { tmpServerConfig } from '../interop/lib/ztwim-server.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';

describe('server health_checks listener', () => {
  const tmp = makeTmpDir('ztwim-health-');
  after(() => tmp.cleanup());

  /** A server config with the health listener on `port` (live /alive, ready /ready); its files under `name`. */
  const configWithHealth = (name: string, port: number): ReturnType<typeof buildServerConfig> =>
    tmpServerConfig(tmp, name, {
      trailer: `health_checks {\n  listener_enabled = true\n  bind_address = "127.0.0.1"\n  bind_port = "${port}"\n  live_path = "/alive"\n  ready_path = "/ready"\n}\n`,
    });

  it('serves live_path and ready_path, 404 elsewhere, and stops with the server', async () => {
    const port = await freePort();
    const cfg = configWithHealth('api', port);
    const server = await startServer(cfg, { log: silentLogger() });
    try {
      assert.equal((await fetch(`http://127.0.0.1:${port}/alive`)).status, 200);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      assert.equal(ready.status, 200);
      // what this server is and when it last reached the datastore (docs/ha.md)
      const body = (await ready.json()) as {
        serving: boolean;
        datastore_last_success: string;
        ca: { x509_authority_id: string; x509: { active: { slot: string } }; jwt: { kid: string } };
      };
      assert.equal(body.serving, true);
      assert.ok(Math.abs(Date.parse(body.datastore_last_success) - Date.now()) < 60_000, body.datastore_last_success);
      assert.match(body.ca.x509_authority_id, /^[0-9a-f]{40}$/);
      assert.equal(body.ca.x509.active.slot, 'A');
      assert.ok(body.ca.jwt.kid.length > 0);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);

      // ServerInfo (the console's server page) reports the same health, with version and plugins
      assert.equal('datastore_host' in body, false, 'no PostgreSQL host for SQLite');
      assert.equal('datastore_read_replica_host' in body, false, 'no read replica for SQLite');

      const admin = createUnixGrpcTransport(tmp.file('api.sock'));
      try {
        const info = await createClient(ServerInfoService, admin).getServerInfo({});
        assert.equal(info.version, ZTWIM_VERSION);
        assert.deepEqual(
          info.plugins.map((p) => `${p.type}/${p.name}`),
          ['DataStore/sql', 'KeyManager/memory', 'NodeAttestor/join_token'],
        );
        assert.match(info.plugins[0]?.detail ?? '', /^sqlite3 .*datastore\.sqlite3$/);
        assert.equal(info.health?.serving, true);
        assert.equal(info.health?.reason, '');
        const seen = Number(info.health?.datastoreLastSuccess ?? 0n);
        assert.ok(Math.abs(seen - Date.now()) < 60_000, String(seen));
        assert.equal(info.health?.datastoreHost, '', 'no PostgreSQL host for SQLite');
      } finally {
        admin.close();
      }
    } finally {
      await server.close();
    }
    await assert.rejects(fetch(`http://127.0.0.1:${port}/alive`));
  });

  it('names the datastore hosts in use on the ready body: the primary and the read replica', async () => {
    const port = await freePort();
    // A SQLite store standing in for a PostgreSQL one with ro_connection_string: the ready body
    // shows what the datastore's hosts() reports.
    const store = await SqliteDataStore.open({ path: tmp.file('hosts.sqlite3'), clock: systemClock, random: cryptoRandom });
    const dataStore = Object.assign(store, { hosts: () => ({ primary: '10.0.0.1:5432', readReplica: '10.0.0.2:5433' }) });
    const server = await startServer(configWithHealth('hosts', port), { log: silentLogger(), dataStore });
    try {
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      assert.equal(ready.status, 200);
      const body = (await ready.json()) as Record<string, unknown>;
      assert.equal(body['datastore_host'], '10.0.0.1:5432');
      assert.equal(body['datastore_read_replica_host'], '10.0.0.2:5433');
    } finally {
      await server.close();
      await store.close();
    }
  });
});
