// `ztwim oidc run` fed by a REAL SPIRE v1.13.0 agent's Workload API, as the operator deploys
// the provider: the published kids are spire-server's JWT authorities, a JWT-SVID from the
// SPIRE agent verifies with jose against our jwks_uri, the same oidc-discovery-provider.conf
// runs SPIRE's own oidc-discovery-provider with byte-identical answers, and a JWT authority
// prepared with `spire-server localauthority jwt prepare` is published before it is activated.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { eventually } from '@ztwim/testkit';
import { PeerMissingError, spireAgentBin, spireServerBin } from './lib/peers.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { freePort, startSpireAgent, type SpireAgent } from './lib/spire-agent.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { decodeJwt, fetchKeys, httpGet, jwtKidsOfSpiffeBundle, startOidcRun, type OidcRun } from './lib/ztwim-oidc.ts';

const TD = 'example.org';
const AUD = 'oidc-interop';

/** SPIRE's own provider, built next to spire-server by setup-interop.sh. */
function spireOidcBin(): string {
  const p = join(dirname(spireServerBin()), 'oidc-discovery-provider');
  if (!existsSync(p)) throw new PeerMissingError('SPIRE v1.13.0 oidc-discovery-provider', `no executable at ${p}`);
  return p;
}

/** The operator's oidc-discovery-provider.conf (HCL), for a given listen port. */
function providerConf(port: number, healthPort: number, agentSocket: string, issuerPort: number): string {
  return `log_level = "info"
domains = ["127.0.0.1"]
jwt_issuer = "http://127.0.0.1:${issuerPort}"
allow_insecure_scheme = true
insecure_addr = "127.0.0.1:${port}"
workload_api {
  socket_path = "${agentSocket}"
  trust_domain = "${TD}"
}
health_checks {
  bind_port = ${healthPort}
}
`;
}

function spireAgentJwt(agent: SpireAgent, audience: string): string {
  const r = spawnSync(spireAgentBin(), ['api', 'fetch', 'jwt', '-audience', audience, '-socketPath', agent.socketPath], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `spire-agent api fetch jwt: ${r.stderr}${r.stdout}`);
  const m = /token\(spiffe:\/\/[^)]+\):\s+(\S+)/.exec(r.stdout);
  assert.ok(m?.[1] !== undefined, r.stdout);
  return m[1];
}

/** eventually() with the timeout as a third argument, as this suite reads. */
const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> => eventually(what, fn, { timeoutMs, intervalMs: 100 });

describe('ztwim oidc run fed by a real SPIRE agent', () => {
  let tmp: TmpDir;
  let server: SpireServer;
  let agent: SpireAgent;
  let ours: OidcRun;
  let spire: { child: ChildProcess; base: string; out: () => string } | undefined;
  let port: number;

  before(async () => {
    tmp = makeTmpDir('ztwim-oidc-spire-');
    port = await freePort();
    const serverPort = await freePort();
    server = await startSpireServer(tmp, { bindPort: serverPort, extraServerConfig: `jwt_issuer = "http://127.0.0.1:${port}"` });
    agent = await startSpireAgent(tmp, server, {
      serverPort,
      // the provider's own identity (the operator creates a ClusterSPIFFEID for it)
      beforeStart: (agentId) =>
        server.cli([
          'entry',
          'create',
          '-parentID',
          agentId,
          '-spiffeID',
          `spiffe://${TD}/oidc-discovery-provider`,
          '-selector',
          `unix:uid:${process.getuid?.() ?? 0}`,
        ]),
    });
    const conf = tmp.write('oidc-discovery-provider.conf', providerConf(port, await freePort(), agent.socketPath, port));
    ours = await startOidcRun(conf, port, { waitForKeys: true, timeoutMs: 60_000 });
  });

  after(async () => {
    if (spire !== undefined && spire.child.exitCode === null) {
      const s = spire;
      const exited = new Promise((r) => s.child.once('exit', r));
      s.child.kill('SIGKILL');
      await exited;
    }
    await ours?.stop('SIGKILL');
    await agent?.stop();
    await server?.stop();
    tmp?.cleanup();
  });

  it("/keys holds exactly spire-server's JWT authorities", async () => {
    const spireKids = jwtKidsOfSpiffeBundle(server.cli(['bundle', 'show', '-format', 'spiffe'])).sort();
    assert.equal(spireKids.length, 1);
    const keys = await fetchKeys(ours.base);
    assert.deepEqual((keys ?? []).map((k) => k.kid).sort(), spireKids);
  });

  it("a JWT-SVID from the SPIRE agent verifies with jose's createRemoteJWKSet against our jwks_uri", async () => {
    const d = await httpGet(`${ours.base}/.well-known/openid-configuration`, { Host: `127.0.0.1:${port}` });
    assert.equal(d.status, 200, d.body);
    const doc = JSON.parse(d.body) as { issuer: string; jwks_uri: string };
    assert.equal(doc.issuer, `http://127.0.0.1:${port}`);
    const token = spireAgentJwt(agent, AUD);
    const jwks = createRemoteJWKSet(new URL(doc.jwks_uri));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: doc.issuer, audience: AUD });
    assert.equal(payload.sub, `spiffe://${TD}/oidc-discovery-provider`);
    assert.equal(protectedHeader.kid, (await fetchKeys(ours.base))?.[0]?.kid);
    // a token signed by a key we do not publish is refused
    const [h, p] = token.split('.');
    await assert.rejects(jwtVerify(`${h}.${p}.${Buffer.from('x'.repeat(64)).toString('base64url')}`, jwks, { issuer: doc.issuer, audience: AUD }));
  });

  it("SPIRE's oidc-discovery-provider runs the same config file; /keys byte for byte the same", async () => {
    const spirePort = await freePort();
    // same file, only the listen port (and health port) differ; the issuer stays ours
    const conf = tmp.write('spire-oidc.conf', providerConf(spirePort, await freePort(), agent.socketPath, port));
    const child = spawn(spireOidcBin(), ['-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    spire = { child, base: `http://127.0.0.1:${spirePort}`, out: () => out };
    const base = spire.base;
    await until('SPIRE provider keys', async () => ((await fetchKeys(base)) === undefined ? undefined : true), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${out}`);
    });
    const theirs = await httpGet(`${base}/keys`);
    const mine = await httpGet(`${ours.base}/keys`);
    assert.equal(mine.status, theirs.status);
    assert.equal(mine.body, theirs.body, 'identical /keys bodies');
    for (const h of ['content-type', 'cache-control', 'pragma', 'expires']) assert.equal(mine.headers[h], theirs.headers[h], h);
    const host = { Host: `127.0.0.1:${port}` };
    const dTheirs = await httpGet(`${base}/.well-known/openid-configuration`, host);
    const dMine = await httpGet(`${ours.base}/.well-known/openid-configuration`, host);
    assert.equal(dMine.status, 200);
    // Same document, members in the same order; one deliberate difference: SPIRE always lists
    // RS256, ES256 and ES384, we list the algs of the keys we publish (a subset of those).
    type Doc = Record<string, unknown> & { id_token_signing_alg_values_supported: string[] };
    const theirsDoc = JSON.parse(dTheirs.body) as Doc;
    const mineDoc = JSON.parse(dMine.body) as Doc;
    assert.deepEqual(Object.keys(mineDoc), Object.keys(theirsDoc));
    assert.deepEqual({ ...mineDoc, id_token_signing_alg_values_supported: [] }, { ...theirsDoc, id_token_signing_alg_values_supported: [] });
    assert.deepEqual(theirsDoc.id_token_signing_alg_values_supported, ['RS256', 'ES256', 'ES384']);
    const keyAlgs = (JSON.parse(mine.body) as { keys: Array<{ alg: string }> }).keys.map((k) => k.alg);
    assert.deepEqual(mineDoc.id_token_signing_alg_values_supported, [...new Set(keyAlgs)]);
  });

  it('a JWT authority prepared with `localauthority jwt prepare` is published before it is activated', async (t) => {
    const before = (await fetchKeys(ours.base))?.map((k) => k.kid) ?? [];
    const prepared = server.cli(['localauthority', 'jwt', 'prepare', '-output', 'json']);
    const preparedAt = Date.now();
    const id = (JSON.parse(prepared) as { prepared_authority?: { authority_id?: string } }).prepared_authority?.authority_id;
    assert.ok(id !== undefined && id !== '', prepared);
    assert.ok(!before.includes(id), 'a new key');
    // the agent syncs its bundle every 5 s; the stream delivers it to us at once
    await until(`kid ${id} at /keys`, async () => ((await fetchKeys(ours.base))?.some((k) => k.kid === id) === true ? true : undefined), 20_000);
    t.diagnostic(`prepared key published ${Date.now() - preparedAt} ms after prepare`);
    const spireKids = jwtKidsOfSpiffeBundle(server.cli(['bundle', 'show', '-format', 'spiffe'])).sort();
    assert.deepEqual((await fetchKeys(ours.base))?.map((k) => k.kid).sort(), spireKids);
    // not yet in use: a fresh JWT-SVID is still signed with the old key
    const old = decodeJwt(spireAgentJwt(agent, `${AUD}-before`));
    assert.notEqual(old.header.kid, id);

    server.cli(['localauthority', 'jwt', 'activate', '-authorityID', id]);
    const jwks = createRemoteJWKSet(new URL(`${ours.base}/keys`));
    const token = await until(
      'a JWT-SVID signed with the activated key',
      async () => {
        // a new audience each time, so the agent mints rather than serving its cache
        const tok = spireAgentJwt(agent, `${AUD}-after-${Date.now()}`);
        return decodeJwt(tok).header.kid === id ? tok : undefined;
      },
      30_000,
    );
    const { payload } = await jwtVerify(token, jwks, { issuer: `http://127.0.0.1:${port}` });
    assert.equal(payload.sub, `spiffe://${TD}/oidc-discovery-provider`);
  });
});
