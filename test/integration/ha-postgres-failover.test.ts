// Two ztwim servers on a PostgreSQL primary with a streaming replica (synchronous replication),
// connected with libpq's multi-host string (`postgresql://P1,P2/db?target_session_attrs=read-write`)
// and the replica as ro_connection_string (docs/ha.md). The primary's postmaster is killed with
// SIGKILL and the replica promoted: while there is no primary both servers say so on their ready
// path (503, JSON naming the datastore), a workload keeps getting its SVIDs from the agent's cache;
// after the promotion both servers serve again (entry create, agent sync) without a restart,
// within a bound measured here, and no entry acknowledged before the kill is lost.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { ConnectError, Code, createClient } from '@connectrpc/connect';
import { silentLogger } from '@ztwim/core';
import { startAgent, type RunningAgent } from '@ztwim/agent';
import {
  AgentService,
  BundleService,
  EntryService,
  SpiffeWorkloadAPI,
  cancelOnBreak,
  createUnixGrpcTransport,
  headersInterceptor,
  type GrpcClientTransport,
} from '@ztwim/proto';
import { TrustDomain } from '@ztwim/spiffe';
import { eventually } from '@ztwim/testkit';
import { startPgPrimaryReplica, type PgPair } from '@ztwim/testkit/pg-replica';
import { ServerClient, attestAgent, type AgentCredentials } from '../../packages/agent/src/client/server-client.ts';
import { httpGet } from '../interop/lib/ztwim-oidc.ts';
import { freePort } from '../interop/lib/net.ts';
import { derToPem } from '../interop/lib/pem.ts';
import { agentConfigFor } from '../interop/lib/ztwim-agent-env.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

// ZTWIM_PG_DIR and ports of this suite's own (25480-25489), away from the other PostgreSQL suites.
const DIR = `${process.env['ZTWIM_PG_DIR'] ?? '/tmp/ztwim-pg-ha-pg'}/failover`;
const PRIMARY_PORT = 25480;
const REPLICA_PORT = 25481;
const TD = 'example.org';
/** How long both servers may take to serve again after the promotion (measured: see the log line). */
const RECOVERY_BOUND_MS = 30_000;

interface Ready {
  readonly status: number;
  readonly json: Record<string, unknown>;
}

describe('two servers on a PostgreSQL primary and its streaming replica: the primary killed, the replica promoted', () => {
  let pair: PgPair;
  let tmp: TmpDir;
  const servers: Array<{ srv: ZtwimAdminServer; admin: GrpcClientTransport; healthPort: number }> = [];
  const transports: GrpcClientTransport[] = [];
  let agent: RunningAgent | undefined;

  before(async () => {
    pair = await startPgPrimaryReplica({ dir: DIR, primaryPort: PRIMARY_PORT, replicaPort: REPLICA_PORT, synchronous: true });
    tmp = makeTmpDir('ztwim-ha-pg-failover-');
    for (let i = 0; i < 2; i++) {
      const healthPort = await freePort();
      const srv = await startZtwimAdminServer({
        trustDomain: TD,
        dataStorePluginData:
          `      database_type = "postgres"\n      connection_string = "${pair.multiHostConnectionString}"\n` +
          `      ro_connection_string = "${pair.replicaUrl}"\n      max_open_conns = 8`,
        extraConfig: `health_checks {\n  listener_enabled = true\n  bind_address = "127.0.0.1"\n  bind_port = "${healthPort}"\n}\n`,
      });
      servers.push({ srv, admin: createUnixGrpcTransport(srv.socketPath), healthPort });
    }
  });

  after(async () => {
    for (const t of transports) t.close();
    await agent?.close();
    for (const s of servers) {
      s.admin.close();
      await s.srv.stop();
    }
    tmp?.cleanup();
    await pair?.stop();
  });

  const at = (i: number) => servers[i] ?? assert.fail(`no server ${i}`);
  const ready = async (i: number): Promise<Ready> => {
    const r = await httpGet(`http://127.0.0.1:${at(i).healthPort}/ready`);
    return { status: r.status, json: JSON.parse(r.body) as Record<string, unknown> };
  };
  const entries = (i: number) => createClient(EntryService, at(i).admin);
  const createEntry = async (i: number, parentPath: string, path: string, selector: string): Promise<string> => {
    const r = await entries(i).batchCreateEntry({
      entries: [{ spiffeId: { trustDomain: TD, path }, parentId: { trustDomain: TD, path: parentPath }, selectors: [{ type: 'unix', value: selector }] }],
    });
    const x = r.results[0];
    if (x?.status?.code !== 0) throw new ConnectError(x?.status?.message ?? 'no result', x?.status?.code ?? Code.Unknown);
    return x.entry?.id ?? assert.fail('no entry id');
  };
  const roots = async (i: number): Promise<Uint8Array[]> => (await createClient(BundleService, at(i).admin).getBundle({})).x509Authorities.map((a) => a.asn1);
  const clientOf = async (i: number, creds?: AgentCredentials): Promise<ServerClient> =>
    new ServerClient({ host: '127.0.0.1', port: at(i).srv.port, trustDomain: TrustDomain.parse(TD), roots: await roots(i) }, creds);
  /** An agent's sync on server i: the ids of its authorised entries. */
  const syncIds = async (i: number, creds: AgentCredentials): Promise<Set<string>> => {
    const c = await clientOf(i, creds);
    try {
      return new Set((await c.entry.getAuthorizedEntries({})).entries.map((e) => e.id));
    } finally {
      c.close();
    }
  };
  const allEntryIds = async (i: number): Promise<Set<string>> => {
    const out = new Set<string>();
    let pageToken = '';
    do {
      const page = await entries(i).listEntries({ pageSize: 500, pageToken });
      for (const e of page.entries) out.add(e.id);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return out;
  };

  it('both servers serve again without a restart, no acknowledged entry is lost, ready says the datastore is away meanwhile, cached SVIDs keep being served', async () => {
    // An agent (in-process) on server 0, and a workload entry for this process's uid.
    const bundlePem = (await roots(0)).map((a) => derToPem(a)).join('');
    const token = (await createClient(AgentService, at(0).admin).createJoinToken({ ttl: 600 })).value;
    const agentPath = `/spire/agent/join_token/${token}`;
    const config = agentConfigFor(tmp, at(0).srv.port, token, bundlePem);
    agent = await startAgent(config, { logger: silentLogger() });
    await createEntry(1, agentPath, '/workload', `uid:${process.getuid?.() ?? 0}`);
    const wl = createUnixGrpcTransport(config.socketPath, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
    transports.push(wl);
    const workload = createClient(SpiffeWorkloadAPI, wl);
    const x509 = async (): Promise<string | undefined> => {
      for await (const m of cancelOnBreak((signal) => workload.fetchX509SVID({}, { signal, timeoutMs: 5000 }))) return m.svids[0]?.spiffeId;
      return undefined;
    };
    const jwt = async (audience: string): Promise<string | undefined> =>
      (await workload.fetchJWTSVID({ audience: [audience] }, { timeoutMs: 5000 })).svids[0]?.spiffeId;
    await eventually(
      'the workload gets its SVIDs',
      async () => {
        try {
          return (await x509()) === `spiffe://${TD}/workload` && (await jwt('cached')) === `spiffe://${TD}/workload`;
        } catch {
          return false;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );

    // A second agent, attested on server 1, with entries written on both servers.
    const boot = await clientOf(1);
    const creds = await attestAgent(boot, {
      type: 'join_token',
      token: (await createClient(AgentService, at(0).admin).createJoinToken({ ttl: 600 })).value,
    }).finally(() => boot.close());
    const acked: string[] = [];
    for (let n = 0; n < 20; n++) acked.push(await createEntry(n % 2, creds.svid.id.path, `/before/${n}`, `uid:${1000 + n}`));
    for (const i of [0, 1]) {
      const r = await ready(i);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json['datastore_host'], `127.0.0.1:${PRIMARY_PORT}`);
    }

    // The primary goes.
    await pair.killPrimary();
    const killedAt = performance.now();
    for (const i of [0, 1]) {
      await eventually(
        `server ${i}'s ready path says there is no primary`,
        async () => {
          const r = await ready(i);
          return r.status === 503 && /no host of the connection string accepts read-write sessions/.test(String(r.json['error']));
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      const r = await ready(i);
      assert.equal(r.json['serving'], false);
      assert.equal(r.json['datastore_host'], null);
      assert.match(String(r.json['error']), /^datastore: postgres unavailable: /);
      assert.match(String(r.json['error']), new RegExp(`127\\.0\\.0\\.1:${PRIMARY_PORT}: .*ECONNREFUSED`));
      assert.match(String(r.json['error']), new RegExp(`127\\.0\\.0\\.1:${REPLICA_PORT}: a standby \\(in recovery, read-only\\)`));
      assert.equal(typeof r.json['datastore_last_success'], 'string');
      await assert.rejects(createEntry(i, creds.svid.id.path, `/down/${i}`, 'uid:1'), (e: unknown) => {
        assert.ok(e instanceof ConnectError && e.code === Code.Unavailable, String(e));
        return true;
      });
    }
    // The workload is served from the agent's cache meanwhile.
    assert.equal(await x509(), `spiffe://${TD}/workload`);
    assert.equal(await jwt('cached'), `spiffe://${TD}/workload`);

    // The replica is promoted: both servers find it by themselves.
    await pair.promoteReplica();
    const promotedAt = performance.now();
    // Both servers at once, each timed on its own: ready 200, an entry created, and an agent sync
    // with every entry acknowledged before the kill and the one it just created.
    const before = [...acked];
    let attempt = 0;
    const servedAfter = await Promise.all(
      [0, 1].map(async (i) => {
        await eventually(
          `server ${i} serves again`,
          async () => {
            if ((await ready(i)).status !== 200) return false;
            try {
              const id = await createEntry(i, creds.svid.id.path, `/after/${i}/${attempt++}`, `uid:${2000 + i}`);
              acked.push(id);
              const synced = await syncIds(i, creds);
              return [...before, id].every((x) => synced.has(x));
            } catch {
              return false;
            }
          },
          { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 50 },
        );
        return performance.now() - promotedAt;
      }),
    );
    for (const i of [0, 1]) {
      const r = await ready(i);
      assert.equal(r.status, 200);
      assert.equal(r.json['datastore_host'], `127.0.0.1:${REPLICA_PORT}`);
      // No acknowledged entry lost: listed, and in the agent's sync, on both servers.
      const listed = await allEntryIds(i);
      const synced = await syncIds(i, creds);
      assert.deepEqual(
        acked.filter((id) => !listed.has(id)),
        [],
        `server ${i}: acknowledged entries missing from ListEntries`,
      );
      assert.deepEqual(
        acked.filter((id) => !synced.has(id)),
        [],
        `server ${i}: acknowledged entries missing from the agent sync`,
      );
    }
    // The workload's agent gets new JWT-SVIDs signed again (a NewJWTSVID to server 0).
    await eventually(
      'a new JWT-SVID after the fail-over',
      async () => {
        try {
          return (await jwt('after-failover')) === `spiffe://${TD}/workload`;
        } catch {
          return false;
        }
      },
      { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 200 },
    );
    console.log(
      `ha-postgres-failover: ${acked.length} entries, 0 lost; no primary for ${(promotedAt - killedAt).toFixed(0)} ms; ` +
        `after pg_ctl promote returned, server 0 served again (ready 200, entry created, complete agent sync) in ${servedAfter[0]?.toFixed(0)} ms, server 1 in ${servedAfter[1]?.toFixed(0)} ms`,
    );
  });
});
