// `ztwim oidc run` as a user runs it: a ztwim server (short ca_ttl, so JWT keys are prepared
// and activated during the test) and agent, and two providers in child processes, one fed by
// the agent's Workload API, one by the server API. Checks the published kids against
// `ztwim server bundle show -format spiffe`, that a prepared key is published within seconds and
// before the server signs with it, that the Workload API source rides out an agent restart, and
// that a bad config is refused naming the field.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually } from '@ztwim/testkit';
import { createClient, type Client } from '@connectrpc/connect';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { cryptoRandom, parseConfigText, randomUuid, silentLogger, systemClock, unixSeconds } from '@ztwim/core';
import { SvidService, createUnixGrpcTransport, type GrpcClientTransport } from '@ztwim/proto';
import { buildServerConfig, startServer, type RunningServer } from '@ztwim/server';
import { buildAgentConfig, startAgent, type AgentConfig, type RunningAgent } from '@ztwim/agent';
import { derToPem } from '@ztwim/spiffe';
import { freePort } from '../interop/lib/spire-admin.ts';
import { agentConf } from '../interop/lib/server-conf.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { decodeJwt, fetchKeys, httpGet, jwtKidsOfSpiffeBundle, startOidcRun, ztwim, type OidcRun, type PublishedKey } from '../interop/lib/ztwim-oidc.ts';

const TD = 'example.org';
// 60 s CA: the rotator (10 s ticks) prepares a JWT key at half of the active key's life and
// activates it at 5/6, so a new key is prepared about every 30 s and activated ~20 s later, for as
// long as the server runs. The rotation test follows the first key prepared after it starts,
// whenever that is: a setup slowed by load only moves which key that is.
const CA_TTL_MS = 60_000;
const CA_TTL = `${CA_TTL_MS / 1000}s`;

interface Env {
  tmp: TmpDir;
  server: RunningServer;
  agentConfig: AgentConfig;
  agent: RunningAgent;
  wl: OidcRun;
  srv: OidcRun;
  svid: Client<typeof SvidService>;
  transport: GrpcClientTransport;
}

async function startEnv(): Promise<Env> {
  const tmp = makeTmpDir('ztwim-oidc-run-');
  const data = join(tmp.path, 'server');
  mkdirSync(data, { recursive: true });
  const adminSocket = join(tmp.path, 'server-api.sock');
  const serverConf = `server {
  bind_address = "127.0.0.1"
  bind_port = 0
  socket_path = "${adminSocket}"
  trust_domain = "${TD}"
  data_dir = "${data}"
  log_level = "warn"
  ca_ttl = "${CA_TTL}"
  default_jwt_svid_ttl = "5m"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(data, 'datastore.sqlite3')}"
    }
  }
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
}
telemetry { disabled = true }
`;
  const server = await startServer(buildServerConfig(parseConfigText(serverConf, 'hcl'), 'oidc-run server.conf', {}, tmp.path), { log: silentLogger() });
  const token = randomUuid(cryptoRandom);
  await server.dataStore.createJoinToken({ token, expiresAt: unixSeconds(systemClock.now()) + 600 });
  const bundle = await server.bundle();
  const agentData = join(tmp.path, 'agent');
  const agentSocket = join(tmp.path, 'agent.sock');
  const agentConfig: AgentConfig = {
    ...buildAgentConfig(
      parseConfigText(agentConf({ serverPort: server.port, trustDomain: TD, dataDir: agentData, socketPath: agentSocket, joinToken: token }), 'hcl'),
      'oidc-run agent.conf',
    ),
    trustBundle: bundle.x509Authorities.map((a) => derToPem(a.asn1, 'CERTIFICATE')).join(''),
    trustBundleFormat: 'pem',
  };
  const agent = await startAgent(agentConfig, { logger: silentLogger() });
  // The provider is a workload of this agent: SPIRE's Workload API gives JWT bundles only to callers with an identity.
  await server.dataStore.createEntry({
    spiffeId: `spiffe://${TD}/oidc-discovery-provider`,
    parentId: agent.agentId,
    selectors: [{ type: 'unix', value: `uid:${process.getuid?.() ?? 0}` }],
  });

  const wlPort = await freePort();
  const wlConf = tmp.write(
    'oidc-workload-api.conf',
    `# the operator's layout: keys from the agent's Workload API
log_level = "info"
domains = ["localhost", "127.0.0.1"]
jwt_issuer = "http://localhost:${wlPort}"
allow_insecure_scheme = true
insecure_addr = "127.0.0.1:${wlPort}"
workload_api {
  socket_path = "${agentSocket}"
  trust_domain = "${TD}"
  poll_interval = "2s"
}
`,
  );
  const srvPort = await freePort();
  const srvConf = tmp.write(
    'oidc-server-api.conf',
    `domains = ["localhost"]
jwt_issuer = "http://localhost:${srvPort}"
allow_insecure_scheme = true
insecure_addr = "127.0.0.1:${srvPort}"
server_api {
  address = "unix://${adminSocket}"
  poll_interval = "1s"
}
`,
  );
  const [wl, srv] = await Promise.all([
    startOidcRun(wlConf, wlPort, { waitForKeys: true, timeoutMs: 60_000 }),
    startOidcRun(srvConf, srvPort, { waitForKeys: true, timeoutMs: 60_000 }),
  ]);
  const transport = createUnixGrpcTransport(adminSocket);
  return { tmp, server, agentConfig, agent, wl, srv, svid: createClient(SvidService, transport), transport };
}

const kids = (keys: ReadonlyArray<{ kid: string }> | undefined): string[] => (keys ?? []).map((k) => k.kid).sort();

describe('ztwim oidc run', () => {
  let env: Env;

  before(async () => {
    env = await startEnv();
  });
  after(async () => {
    if (env === undefined) return;
    env.transport.close();
    await env.wl.stop('SIGKILL');
    await env.srv.stop('SIGKILL');
    await env.agent.close().catch(() => undefined);
    await env.server.close();
    env.tmp.cleanup();
  });

  it('serves the discovery document and the server JWT authorities, from either source', async () => {
    const shown = await ztwim(['server', 'bundle', 'show', '-format', 'spiffe', '-socketPath', env.server.socketPath]);
    assert.equal(shown.status, 0, shown.stderr);
    const serverKids = jwtKidsOfSpiffeBundle(shown.stdout).sort();
    // one key, or two when a slow setup let the rotator prepare the next one already
    assert.ok(serverKids.length >= 1, shown.stdout);
    for (const run of [env.wl, env.srv]) {
      const port = new URL(run.base).port;
      const d = await httpGet(`${run.base}/.well-known/openid-configuration`, { Host: `localhost:${port}` });
      assert.equal(d.status, 200, d.body);
      const doc = JSON.parse(d.body) as { issuer: string; jwks_uri: string; id_token_signing_alg_values_supported: string[] };
      assert.equal(doc.issuer, `http://localhost:${port}`);
      assert.equal(doc.jwks_uri, `http://localhost:${port}/keys`);
      // the provider polls the server every 1-2 s: a key prepared just now may be a poll away
      const k = await eventually(`${run.base} to serve the server's keys`, async () => {
        const r = await httpGet(`${run.base}/keys`);
        return r.status === 200 && kids((JSON.parse(r.body) as { keys: Array<{ kid: string }> }).keys).join() === serverKids.join() && r;
      }).catch(async () => await httpGet(`${run.base}/keys`));
      assert.equal(k.status, 200);
      assert.equal(k.headers['content-type'], 'application/json');
      const keys = (JSON.parse(k.body) as { keys: Array<{ kid: string; use?: string; alg?: string }> }).keys;
      assert.deepEqual(kids(keys), serverKids, `${run.base}: ${k.body}`);
      for (const key of keys) {
        assert.equal(key.use, undefined, 'set_key_use is off');
        assert.ok(doc.id_token_signing_alg_values_supported.includes(key.alg ?? ''), `alg ${key.alg} advertised`);
      }
    }
    // an unknown host is refused on the discovery route
    const bad = await httpGet(`${env.srv.base}/.well-known/openid-configuration`, { Host: 'evil.example' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /domain "evil\.example" is not allowed/);
  });

  it('workload_api source: the agent goes away, the last keys stay; it comes back, the stream resumes', async () => {
    const before = kids(await fetchKeys(env.wl.base));
    const connects = (): number => env.wl.out().split('Receiving JWT bundles from the Workload API').length - 1;
    const connectsBefore = connects();
    assert.ok(connectsBefore >= 1, env.wl.out());
    await env.agent.close();
    // Until the provider says it lost the stream, then its keys are checked.
    await eventually('the provider to notice the agent going away', () => /Lost the Workload API stream; serving the last keys/.test(env.wl.out()), {
      timeoutMs: 20_000,
    }).catch((e: unknown) => assert.fail(`${String(e)}:\n${env.wl.out()}`));
    assert.deepEqual(kids(await fetchKeys(env.wl.base)), before, 'keys served while the agent is away');
    // the agent restarts with its stored SVID (the join token was used up)
    env.agent = await startAgent(env.agentConfig, { logger: silentLogger() });
    await eventually('the provider to reconnect to the restarted agent', () => connects() > connectsBefore, { timeoutMs: 20_000 }).catch((e: unknown) =>
      assert.fail(`${String(e)}:\n${env.wl.out()}`),
    );
    // the resumed stream delivers the server's keys (the rotator may have prepared one meanwhile)
    const serverKids = kids((await env.server.bundle()).jwtAuthorities.map((k) => ({ kid: k.keyId })));
    await eventually('the provider to serve the keys of the resumed stream', async () => kids(await fetchKeys(env.wl.base)).join() === serverKids.join());
  });

  it('JWT key rotation: a prepared key is published within seconds, before the server signs with it', async (t) => {
    const providers = { workload_api: env.wl, server_api: env.srv } as const;
    const firstSeen: Record<keyof typeof providers, Map<string, number>> = { workload_api: new Map(), server_api: new Map() };
    const serverSeen = new Map<string, number>();
    const tokens: Array<{ token: string; kid: string; iat: number; mintedAt: number }> = [];
    // The keys the server publishes now (the active one, and a prepared one if the test starts
    // between a preparation and its activation): the key followed is the next one it prepares.
    const initialKids = kids((await env.server.bundle()).jwtAuthorities.map((k) => ({ kid: k.keyId })));
    const started = Date.now();
    for (const kid of initialKids) serverSeen.set(kid, started);
    for (const name of Object.keys(providers) as Array<keyof typeof providers>) {
      // a provider polls the server every 1-2 s: it may be a poll behind the server here
      const served = await eventually(`${name} to serve the server's current keys`, async () => {
        const now = kids(await fetchKeys(providers[name].base));
        return now.join() === initialKids.join() && now;
      });
      for (const kid of served) firstSeen[name].set(kid, Date.now());
    }
    // Tokens carry iat in whole seconds: wait for the next second so that every token's iat is
    // after the moment the providers were seen serving the initial keys.
    const seenAll = Date.now();
    await eventually('the next whole second', () => Math.floor(Date.now() / 1000) * 1000 > seenAll, { timeoutMs: 2000 });
    let stop = false;
    const errors: string[] = [];

    // The watchers and the minter below sample at a fixed pace: it is the resolution of the
    // timings asserted afterwards, not a wait for something.
    const watchKeys = async (name: keyof typeof providers): Promise<void> => {
      while (!stop) {
        const keys = await fetchKeys(providers[name].base);
        const now = Date.now();
        if (keys === undefined) errors.push(`${name}: /keys unavailable at ${now}`);
        for (const k of keys ?? []) if (!firstSeen[name].has(k.kid)) firstSeen[name].set(k.kid, now);
        await delay(100);
      }
    };
    const watchServer = async (): Promise<void> => {
      while (!stop) {
        const b = await env.server.bundle();
        const now = Date.now();
        for (const k of b.jwtAuthorities) if (!serverSeen.has(k.keyId)) serverSeen.set(k.keyId, now);
        await delay(100);
      }
    };
    // The first key the server publishes after the test started.
    const nextKid = (): string | undefined => [...serverSeen.keys()].find((kid) => !initialKids.includes(kid));
    const mint = async (): Promise<void> => {
      let afterRotation = 0;
      // a key is prepared within ~CA_TTL/2 (+ a 10 s tick) and activated ~CA_TTL/3 later: twice the TTL is ample
      const deadline = started + 2 * CA_TTL_MS;
      while (afterRotation < 8) {
        if (Date.now() > deadline)
          throw new Error(`the server did not prepare and activate a new JWT key within ${2 * CA_TTL_MS} ms (tokens: ${tokens.length})`);
        const r = await env.svid.mintJWTSVID({ id: { trustDomain: TD, path: '/workload' }, audience: ['oidc-run'] });
        const token = r.svid?.token ?? '';
        const { header, payload } = decodeJwt(token);
        const entry = { token, kid: header.kid ?? '', iat: payload.iat ?? 0, mintedAt: Date.now() };
        tokens.push(entry);
        if (entry.kid === nextKid()) afterRotation++;
        await delay(250);
      }
    };
    const watchers = [watchKeys('workload_api'), watchKeys('server_api'), watchServer()];
    try {
      await mint();
    } finally {
      stop = true;
      await Promise.all(watchers);
    }

    assert.deepEqual(errors, [], 'both providers kept serving keys throughout');
    const newKid = nextKid() as string;
    t.diagnostic(`${tokens.length} JWT-SVIDs minted, ${tokens.filter((x) => x.kid === newKid).length} with the new key`);
    const prepared = serverSeen.get(newKid);
    assert.ok(prepared !== undefined, 'the server bundle carried the new key');
    const firstUse = Math.min(...tokens.filter((x) => x.kid === newKid).map((x) => x.mintedAt));
    for (const name of Object.keys(providers) as Array<keyof typeof providers>) {
      const seen = firstSeen[name].get(newKid);
      assert.ok(seen !== undefined, `${name}: the new key ${newKid} was published`);
      t.diagnostic(`${name}: new key published ${seen - prepared} ms after the server prepared it, ${firstUse - seen} ms before its first use`);
      // (a) published within a few seconds of the server preparing it
      assert.ok(seen - prepared < 3000, `${name}: published ${seen - prepared} ms after the server prepared it`);
      // and well before its first use: tokens signed with the old key were minted after it was published
      assert.ok(seen < firstUse, `${name}: published at ${seen}, first used at ${firstUse}`);
      assert.ok(
        tokens.some((x) => x.kid !== newKid && x.mintedAt > seen),
        `${name}: the new key was published while the server still signed with the old one`,
      );
      // (b) every token's kid was already served before the token's iat
      for (const tok of tokens) {
        const s = firstSeen[name].get(tok.kid);
        assert.ok(s !== undefined && s <= tok.iat * 1000, `${name}: kid ${tok.kid} of a token with iat ${tok.iat} first served at ${String(s)}`);
      }
    }

    // the providers serve what the server's bundle holds now, and the tokens verify against it
    const shown = await ztwim(['server', 'bundle', 'show', '-format', 'spiffe', '-socketPath', env.server.socketPath]);
    assert.equal(shown.status, 0, shown.stderr);
    const serverKids = jwtKidsOfSpiffeBundle(shown.stdout).sort();
    assert.ok(serverKids.includes(newKid), shown.stdout);
    for (const run of Object.values(providers)) {
      // the rotator keeps going (a key every ~30 s): the provider may be a poll behind the bundle
      let keys: PublishedKey[] = [];
      let now: string[] = [];
      await eventually(`${run.base} to serve the keys of the server's bundle`, async () => {
        now = kids((await env.server.bundle()).jwtAuthorities.map((k) => ({ kid: k.keyId })));
        keys = (await fetchKeys(run.base)) ?? [];
        return kids(keys).join() === now.join();
      }).catch(() => assert.deepEqual(kids(keys), now));
      const jwks = createLocalJWKSet({ keys: keys as never });
      for (const tok of tokens.filter((x) => now.includes(x.kid))) {
        const { payload } = await jwtVerify(tok.token, jwks, { audience: 'oidc-run', currentDate: new Date(tok.mintedAt) });
        assert.equal(payload.sub, `spiffe://${TD}/workload`);
      }
    }
  });

  it('SIGTERM and SIGINT stop the providers cleanly (exit 0)', async () => {
    assert.equal(await env.srv.stop('SIGTERM'), 0, env.srv.out());
    assert.match(env.srv.out(), /OIDC discovery provider stopped\./);
    assert.equal(await env.wl.stop('SIGINT'), 0, env.wl.out());
    // the port is released
    await assert.rejects(httpGet(`${env.srv.base}/keys`), /ECONNREFUSED/);
  });
});

describe('ztwim oidc run: bad config', () => {
  let tmp: TmpDir;
  before(() => {
    tmp = makeTmpDir('ztwim-oidc-bad-');
  });
  after(() => tmp?.cleanup());

  it('a non-URL issuer is refused: exit 1, the message names the field and line', async () => {
    const conf = tmp.write(
      'oidc.conf',
      `domains = ["localhost"]
jwt_issuer = "localhost:8443"
insecure_addr = "127.0.0.1:0"
server_api { address = "unix:///tmp/none.sock" }
`,
    );
    const r = await ztwim(['oidc', 'run', '-config', conf]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^Error: .*oidc\.conf: jwt_issuer \(line 2\): must be a URL with a scheme and host\n$/);
    assert.equal(r.stdout, '');
  });

  it('two key sources and an unknown key are refused together; validate says the same', async () => {
    const conf = tmp.write(
      'two.conf',
      `domains = ["localhost"]
insecure_addr = "127.0.0.1:0"
server_api { address = "unix:///tmp/none.sock" }
workload_api {
  socket_path = "/tmp/agent.sock"
  trust_domain = "example.org"
}
listen_port = 8080
`,
    );
    for (const cmd of ['run', 'validate']) {
      const r = await ztwim(['oidc', cmd, '-config', conf]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /workload_api \(line 4\): cannot be combined with server_api/);
      assert.match(r.stderr, /listen_port \(line 8\): unknown key/);
    }
  });

  it('-expandEnv fills the config from the environment', async () => {
    const conf = tmp.write(
      'env.conf',
      'domains = ["${OIDC_HOST}"]\njwt_issuer = "https://${OIDC_HOST}"\ninsecure_addr = "127.0.0.1:0"\nworkload_api {\n  socket_path = "$SOCK"\n  trust_domain = "example.org"\n}\n',
    );
    const env = { OIDC_HOST: 'oidc.example.org', SOCK: '/tmp/agent.sock' };
    const ok = await ztwim(['oidc', 'validate', '-config', conf, '-expandEnv'], { env });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'Configuration is valid.\n');
    const literal = await ztwim(['oidc', 'validate', '-config', conf], { env });
    assert.equal(literal.status, 1);
  });
});
