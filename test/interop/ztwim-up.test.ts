// The one-command local system, as a user runs it: `ztwim up` in a child process, then foreign
// SPIFFE clients (py-spiffe, the real spire-agent CLI) and ztwim's own CLI fetch identities from
// it; a second `ztwim up` reuses the same CA and entries; Ctrl-C stops it cleanly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { readFileSync } from 'node:fs';
import { goBuild, INTEROP_DIR, libFile, python, spireAgentBin, ZTWIM_BIN, ztwimNodeFlags } from './lib/peers.ts';
import { freePort } from './lib/spire-admin.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { startUp, stopUp, ztwim, type Up } from './lib/ztwim-up.ts';

describe('ztwim up: one command, identities at once', () => {
  let dir: TmpDir;
  let up: Up;
  let ports: { server: number; oidc: number };
  const me = `spiffe://example.org/user/${userInfo().username}`;

  before(async () => {
    dir = makeTmpDir('ztwim-up-');
    ports = { server: await freePort(), oidc: await freePort() };
    up = await startUp(dir, ports);
  });
  after(async () => {
    if (up !== undefined) await stopUp(up);
    dir?.cleanup();
  });

  it('prints where the sockets are and the invoking user identity', () => {
    assert.match(up.out(), new RegExp(`Workload API: +${join(dir.path, 'agent.sock')}`));
    assert.ok(up.out().includes(me), up.out());
  });

  it('runs node with the V8 flags of its first line (the agent and server are tuned by them)', () => {
    const flags = ztwimNodeFlags();
    // None: a V8 flag makes V8 refuse Node's built-in code cache (packages/cli/bin/ztwim.js).
    assert.deepEqual(flags, []);
    assert.ok(up.child.pid !== undefined);
    const argv = readFileSync(`/proc/${up.child.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv[0]?.endsWith('node'), argv.join(' '));
    assert.deepEqual(argv.slice(1, 1 + flags.length), flags);
    assert.equal(argv[1 + flags.length], ZTWIM_BIN);
  });

  it('ztwim api fetch x509 / jwt work from the same shell', () => {
    const sock = join(dir.path, 'agent.sock');
    const x = ztwim(dir, 'api', 'fetch', 'x509', '-socketPath', sock);
    assert.equal(x.status, 0, x.stderr);
    assert.match(x.stdout, /Received 1 svid after/);
    assert.ok(x.stdout.includes(`SPIFFE ID:\t\t${me}`), x.stdout);
    const j = ztwim(dir, 'api', 'fetch', 'jwt', '-audience', 'test', '-socketPath', sock);
    assert.equal(j.status, 0, j.stderr);
    assert.ok(j.stdout.startsWith(`token(${me}):\n\t`), j.stdout);
    const bad = ztwim(dir, 'api', 'fetch', 'jwt', '-socketPath', sock);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /audience must be specified/);
  });

  it('py-spiffe JwtSource and X509Source get the identity (SPIFFE_ENDPOINT_SOCKET)', () => {
    const r = spawnSync(python(), [libFile('pyspiffe_fetch.py'), 'api://AzureADTokenExchange'], {
      env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: `unix://${join(dir.path, 'agent.sock')}` },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { jwt: { spiffe_id: string; audience: string[]; token: string }; x509: { spiffe_id: string; chain_len: number } };
    assert.equal(out.jwt.spiffe_id, me);
    assert.deepEqual(out.jwt.audience, ['api://AzureADTokenExchange']);
    assert.equal(out.x509.spiffe_id, me);
  });

  it('go-spiffe v2: FetchX509SVID, FetchJWTSVID, ValidateJWTSVID and a spiffetls mTLS pair', () => {
    const bin = goBuild(join(INTEROP_DIR, 'go'), './gospiffeclient');
    const r = spawnSync(bin, [`unix://${join(dir.path, 'agent.sock')}`, 'client'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      x509_id: string;
      jwt_id: string;
      validated_id: string;
      wrong_aud_error: string;
      mtls_echo: string;
      mtls_denied_ok: boolean;
    };
    assert.equal(out.x509_id, me);
    assert.equal(out.jwt_id, me);
    assert.equal(out.validated_id, me);
    assert.match(out.wrong_aud_error, /InvalidArgument/);
    assert.equal(out.mtls_echo, 'echo:hello');
    assert.equal(out.mtls_denied_ok, true, 'a client expecting another server ID must refuse');
  });

  it('the real spire-agent CLI fetches from our Workload API', () => {
    const sock = join(dir.path, 'agent.sock');
    const x = spawnSync(spireAgentBin(), ['api', 'fetch', 'x509', '-socketPath', sock], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(x.status, 0, x.stderr);
    assert.ok(x.stdout.includes(`SPIFFE ID:\t\t${me}`), x.stdout);
    const j = spawnSync(spireAgentBin(), ['api', 'fetch', 'jwt', '-audience', 'test', '-socketPath', sock], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(j.status, 0, j.stderr);
    assert.ok(j.stdout.includes(`token(${me})`), j.stdout);
  });

  it('a JWT-SVID verifies through the local OIDC discovery provider (jose remote JWKS)', async () => {
    const j = ztwim(dir, 'api', 'fetch', 'jwt', '-audience', 'vault', '-socketPath', join(dir.path, 'agent.sock'));
    const token = /^\t(\S+)$/m.exec(j.stdout)?.[1];
    assert.ok(token !== undefined, j.stdout);
    const issuer = `http://localhost:${ports.oidc}`;
    const doc = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    assert.equal(doc.issuer, issuer);
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(doc.jwks_uri)), { issuer, audience: 'vault' });
    assert.equal(payload.sub, me);
    await assert.rejects(jwtVerify(token, createRemoteJWKSet(new URL(doc.jwks_uri)), { issuer, audience: 'other' }));
  });

  it('ztwim oidc check lints the live issuer: Vault passes, Entra ID refuses http and ES256', () => {
    const issuer = `http://localhost:${ports.oidc}`;
    const v = ztwim(dir, 'oidc', 'check', issuer, '-for', 'vault');
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /PASS/);
    const e = ztwim(dir, 'oidc', 'check', issuer, '-for', 'entra');
    assert.equal(e.status, 1, e.stdout + e.stderr);
    assert.match(e.stdout, /Entra ID requires an https issuer/);
  });

  it('Ctrl-C stops it cleanly; a second ztwim up reuses the same CA and entries', async () => {
    const sock = join(dir.path, 'server.sock');
    const before1 = ztwim(dir, 'server', 'bundle', 'show', '-socketPath', sock);
    assert.equal(before1.status, 0, before1.stderr);
    const entries1 = ztwim(dir, 'server', 'entry', 'show', '-socketPath', sock, '-spiffeID', me);
    assert.match(entries1.stdout, /Found 1 entry/);
    assert.equal(await stopUp(up), 0, up.out());
    assert.match(up.out(), /ztwim stopped\./);
    up = await startUp(dir, ports);
    const before2 = ztwim(dir, 'server', 'bundle', 'show', '-socketPath', sock);
    assert.equal(before2.stdout, before1.stdout, 'same CA after restart');
    const entries2 = ztwim(dir, 'server', 'entry', 'show', '-socketPath', sock, '-spiffeID', me);
    assert.match(entries2.stdout, /Found 1 entry/);
    const x = ztwim(dir, 'api', 'fetch', 'x509', '-socketPath', join(dir.path, 'agent.sock'));
    assert.equal(x.status, 0, x.stderr);
  });
});
