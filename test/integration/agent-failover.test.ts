// Three `ztwim server` processes on one PostgreSQL, each bound to its own loopback address
// (127.0.0.1/.2/.3) on the same port, and one agent whose server_address is a DNS name resolving
// to all three. Workloads fetch JWT-SVIDs for new audiences (none cached: each one is a
// NewJWTSVID to a server) in a closed loop while the server the agent uses is killed with
// SIGKILL, brought back, and then the next one killed: the workloads see no error at all, and the
// agent says where it is connected and how often it failed over.
//
// Each server has its own CA and JWT keys (its own KeyManager "disk" file), all of them in the
// bundle stored in the shared database (docs/ha.md): the agent's SVID from one server is trusted by
// the others, and the JWT-SVIDs signed by each validate against the agent's bundle.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createClient } from '@connectrpc/connect';
import { createLogger, parseConfigText, silentLogger } from '@ztwim/core';
import { buildAgentConfig, startAgent, type RunningAgent } from '@ztwim/agent';
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
import { eventually } from '@ztwim/testkit';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { ZTWIM_MAIN, httpGet } from '../interop/lib/ztwim-oidc.ts';
import { serverConf } from '../interop/lib/server-conf.ts';
import { freePort } from '../interop/lib/net.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';

const script = join(REPO_ROOT, 'scripts', 'pg-test-server.sh');
// A cluster of this suite's own (see BRIEF: port picked for this test, away from the others').
const PG_ENV = { ZTWIM_PG_DIR: '/tmp/ztwim-pg-ha-agent', ZTWIM_PG_PORT: '25472', ZTWIM_PG_DB: 'ztwim_ha_agent' };
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'] as const;
const NAME = 'ha-servers.test';
const WORKLOADS = 8;
/** Each workload call's deadline: the fail-over must happen within it. */
const CALL_DEADLINE_MS = 15_000;

function pgctl(cmd: 'start' | 'stop'): string {
  try {
    return (
      execFileSync('bash', [script, cmd], { env: { ...process.env, ...PG_ENV }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 })
        .trim()
        .split('\n')
        .pop() ?? ''
    );
  } catch (e) {
    throw new Error(`${script} ${cmd} failed: ${(e as { stderr?: string }).stderr ?? String(e)}`);
  }
}

/** Whether something accepts TCP connections on host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface ServerProc {
  readonly host: string;
  readonly socketPath: string;
  readonly configPath: string;
  child: ChildProcess | undefined;
  stderr: string;
}

describe('agent fail-over between three ztwim servers on one PostgreSQL', () => {
  let url = '';
  let schema = '';
  let tmp: TmpDir;
  let port = 0;
  const servers: ServerProc[] = [];
  let agent: RunningAgent | undefined;
  const transports: GrpcClientTransport[] = [];

  async function startServer(s: ServerProc): Promise<void> {
    const child = spawn(process.execPath, ['--conditions=ztwim-source', '--import', 'tsx', ZTWIM_MAIN, 'server', 'run', '-config', s.configPath], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    s.child = child;
    s.stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      s.stderr = (s.stderr + d.toString()).slice(-20_000);
    });
    await eventually(
      `ztwim server on ${s.host}:${port} accepting connections`,
      async () => {
        if (child.exitCode !== null) throw new Error(`server ${s.host} exited ${child.exitCode}: ${s.stderr}`);
        return await accepts(s.host, port);
      },
      { timeoutMs: 180_000, intervalMs: 200 },
    );
  }

  function kill9(s: ServerProc): Promise<void> {
    const child = s.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  const admin = (s: ServerProc): GrpcClientTransport => {
    const t = createUnixGrpcTransport(s.socketPath);
    transports.push(t);
    return t;
  };

  before(async () => {
    url = pgctl('start');
    schema = `ha_agent_${process.pid}_${Date.now().toString(36)}`;
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.end();
    const u = new URL(url);
    u.searchParams.set('options', `-c search_path=${schema}`);
    tmp = makeTmpDir('ztwim-ha-agent-');
    port = await freePort();
    for (const [i, host] of HOSTS.entries()) {
      const dir = join(tmp.path, `server-${i + 1}`);
      const dataDir = join(dir, 'data');
      mkdirSync(dataDir, { recursive: true });
      const socketPath = join(dir, 'api.sock');
      const configPath = join(dir, 'server.conf');
      const conf = serverConf({
        port,
        socketPath,
        trustDomain: 'example.org',
        dataDir,
        dataStorePluginData: `      database_type = "postgres"\n      connection_string = "${u.toString()}"\n      max_open_conns = 4`,
        keyManager: { disk: join(dataDir, 'keys.json') },
      }).replace('bind_address = "127.0.0.1"', `bind_address = "${host}"`);
      writeFileSync(configPath, conf);
      servers.push({ host, socketPath, configPath, child: undefined, stderr: '' });
    }
    await Promise.all(servers.map(startServer));
  });

  after(async () => {
    for (const t of transports) t.close();
    await agent?.close();
    await Promise.all(servers.map(kill9));
    tmp?.cleanup();
    try {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    } finally {
      pgctl('stop');
    }
  });

  it('workloads fetching new JWT-SVIDs see no error while the server in use is killed, restarted, and the next one killed', async () => {
    const first = servers[0]!;
    const bundle = await createClient(BundleService, admin(first)).getBundle({});
    const bundlePem = bundle.x509Authorities
      .map((a) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(a.asn1).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`)
      .join('');
    const token = (await createClient(AgentService, admin(first)).createJoinToken({ ttl: 600 })).value;
    const agentId = `spiffe://example.org/spire/agent/join_token/${token}`;
    const healthPort = await freePort();
    const conf = `agent {
  server_address = "${NAME}"
  server_port = ${port}
  trust_domain = "example.org"
  data_dir = "${join(tmp.path, 'agent-data')}"
  socket_path = "${join(tmp.path, 'agent', 'api.sock')}"
  join_token = "${token}"
  log_level = "warn"
  experimental { sync_interval = "500ms" }
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
health_checks {
  listener_enabled = true
  bind_address = "127.0.0.1"
  bind_port = "${healthPort}"
}
telemetry {
  Prometheus {
    host = "127.0.0.1"
    port = 0
  }
}
`;
    const config = { ...buildAgentConfig(parseConfigText(conf, 'hcl'), 'agent.conf'), trustBundle: bundlePem };
    const resolved: string[] = [];
    agent = await startAgent(config, {
      logger: process.env['HA_DEBUG'] === undefined ? silentLogger() : createLogger({ level: 'warn', name: 'agent' }),
      // The name resolves to the three loopback addresses, as a DNS name with three A records.
      resolveHost: async (host) => {
        resolved.push(host);
        assert.equal(host, NAME);
        return [...HOSTS];
      },
    });
    const uid = process.getuid?.() ?? 0;
    const created = await createClient(EntryService, admin(first)).batchCreateEntry({
      entries: [
        {
          spiffeId: { trustDomain: 'example.org', path: '/workload' },
          parentId: { trustDomain: 'example.org', path: new URL(agentId).pathname },
          selectors: [{ type: 'unix', value: `uid:${uid}` }],
        },
      ],
    });
    assert.equal(created.results[0]?.status?.code, 0, created.results[0]?.status?.message);

    const wl = createUnixGrpcTransport(config.socketPath, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
    transports.push(wl);
    const workload = createClient(SpiffeWorkloadAPI, wl);
    await eventually(
      'the workload gets a JWT-SVID',
      async () => {
        try {
          return (await workload.fetchJWTSVID({ audience: ['warm-up'] }, { timeoutMs: 2000 })).svids[0]?.spiffeId === 'spiffe://example.org/workload';
        } catch {
          return false;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );

    // The closed loop: every call a new audience, so a NewJWTSVID to the server each time.
    let running = true;
    let ok = 0;
    const errors: string[] = [];
    let n = 0;
    /** Each served call's duration (ms), printed at the end (figures, not asserted). */
    const took: number[] = [];
    /** One token per JWT signing key seen: which servers signed. */
    const byKid = new Map<string, { token: string; audience: string }>();
    const loops = Array.from({ length: WORKLOADS }, async (_, w) => {
      while (running) {
        const audience = `aud-${w}-${n++}`;
        const t0 = performance.now();
        try {
          const r = await workload.fetchJWTSVID({ audience: [audience] }, { timeoutMs: CALL_DEADLINE_MS });
          took.push(performance.now() - t0);
          const svid = r.svids[0];
          assert.equal(svid?.spiffeId, 'spiffe://example.org/workload');
          const [head, body] = svid.svid.split('.');
          const claims = JSON.parse(Buffer.from(body ?? '', 'base64url').toString()) as { aud: string[] | string };
          assert.deepEqual([claims.aud].flat(), [audience]);
          const kid = (JSON.parse(Buffer.from(head ?? '', 'base64url').toString()) as { kid: string }).kid;
          if (!byKid.has(kid)) byKid.set(kid, { token: svid.svid, audience });
          ok++;
        } catch (e) {
          errors.push(`${audience}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    });
    const served = async (more: number, what: string): Promise<void> => {
      const target = ok + more;
      await eventually(what, () => ok >= target || errors.length > 0, { timeoutMs: 120_000, intervalMs: 50 });
      assert.deepEqual(errors, [], `workload errors ${what}`);
    };
    const inUse = (): ServerProc => {
      const address = agent?.server().address;
      const s = servers.find((x) => `${x.host}:${port}` === address);
      assert.ok(s !== undefined, `agent connected to ${String(address)}`);
      return s;
    };

    try {
      await served(50, 'before any server is killed');
      const before = agent.server();
      assert.equal(before.failovers, 0);

      // 1. kill -9 the server the agent uses.
      const victim = inUse();
      const atKill = ok;
      await kill9(victim);
      await served(100, 'after the first kill');
      const afterKill = agent.server();
      assert.notEqual(afterKill.address, `${victim.host}:${port}`, 'moved off the killed server');
      assert.ok(afterKill.failovers >= 1, `failovers ${afterKill.failovers}`);

      // 2. bring it back; the agent stays where it is.
      await startServer(victim);
      await served(50, 'after the restart');

      // 3. kill -9 the server the agent uses now.
      const second = inUse();
      await kill9(second);
      await served(100, 'after the second kill');
      const end = agent.server();
      assert.notEqual(end.address, `${second.host}:${port}`, 'moved off the second killed server');
      assert.ok(end.failovers >= 2, `failovers ${end.failovers}`);
      assert.ok(ok - atKill >= 250, `served through the kills: ${ok - atKill}`);
      assert.ok(resolved.length >= 2, `the name was resolved again at the fail-overs (${resolved.length})`);
      // Health and metrics say where the agent is and how often it moved.
      const ready = await httpGet(`http://127.0.0.1:${healthPort}/ready`);
      assert.equal(ready.status, 200, ready.body);
      assert.deepEqual(JSON.parse(ready.body), { server_address: end.address, server_failovers: end.failovers });
      const metrics = (await httpGet(`http://127.0.0.1:${agent.metricsPort}/metrics`)).body;
      assert.ok(metrics.includes(`ztwim_agent_server_connected{server_address="${end.address}"} 1`), metrics);
      assert.ok(metrics.includes(`ztwim_agent_server_failovers_total ${end.failovers}`), metrics);
      // X509-SVIDs keep being served from the cache throughout.
      for await (const m of cancelOnBreak((signal) => workload.fetchX509SVID({}, { signal, timeoutMs: 5000 }))) {
        assert.equal(m.svids[0]?.spiffeId, 'spiffe://example.org/workload');
        break;
      }
    } finally {
      running = false;
      await Promise.all(loops);
    }
    assert.deepEqual(errors, [], 'no workload call failed');
    // Tokens signed by different servers' JWT keys all validate against the agent's bundle.
    assert.ok(byKid.size >= 2, `JWT-SVIDs from at least two servers' keys (${byKid.size})`);
    for (const [kid, t] of byKid) {
      const v = await workload.validateJWTSVID({ svid: t.token, audience: t.audience });
      assert.equal(v.spiffeId, 'spiffe://example.org/workload', kid);
    }
    took.sort((a, b) => a - b);
    const q = (f: number): string => (took[Math.min(took.length - 1, Math.floor(f * took.length))] ?? 0).toFixed(0);
    console.log(
      `agent-failover: ${ok} JWT-SVIDs served to ${WORKLOADS} workloads, 0 errors, ${agent.server().failovers} fail-overs; ` +
        `latency ms p50 ${q(0.5)} p99 ${q(0.99)} max ${q(1)}`,
    );
  });
});
