// The SDK examples (examples/sdk/*.ts), run as a reader runs them (`tsx <file>` with
// SPIFFE_ENDPOINT_SOCKET) against one `ztwim up`, each with its peer: node:https/node:tls mTLS,
// undici, @grpc/grpc-js, Express, AWS STS (moto's STS server: it does not verify the token, so the
// test checks the recorded request carried a valid JWT-SVID as WebIdentityToken) and Vault's JWT
// auth (a stand-in for Vault's login endpoint that validates the token with HashiCorp's cap/jwt
// against ztwim's OIDC discovery provider). A missing peer fails the test.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JwtSource, parseAndValidateJwtSvid } from '@ztwim/spiffe';
import { freePort } from './lib/net.ts';
import { INTEROP_DIR, REPO_ROOT, goBuild, requireTool } from './lib/peers.ts';
import { makeTmpDir } from './lib/tmp.ts';
import { until } from './lib/wait.ts';
import { runCommand, type CliRun } from './lib/ztwim-cli.ts';
import { startUp, stopUp, type Up } from './lib/ztwim-up.ts';

const ME = `spiffe://example.org/user/${userInfo().username}`;
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('examples/sdk against ztwim up', { timeout: 900_000 }, () => {
  const tmp = makeTmpDir('ztwim-sdk-examples-');
  let up: Up | undefined;
  let oidcPort = 0;
  const socket = `unix://${join(tmp.path, 'agent.sock')}`;
  const children: ChildProcess[] = [];
  const servers: Server[] = [];

  before(async () => {
    oidcPort = await freePort();
    up = await startUp(tmp, { server: await freePort(), oidc: oidcPort });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    for (const s of servers) s.close();
    if (up !== undefined) await stopUp(up);
    tmp.cleanup();
  });

  /** `tsx examples/sdk/<name>` (the SDK from its sources), output on stdout+stderr. */
  const example = (name: string, env: Record<string, string> = {}): Promise<CliRun> =>
    runCommand(process.execPath, ['--conditions=ztwim-source', '--import', 'tsx', join(REPO_ROOT, 'examples', 'sdk', name)], REPO_ROOT, {
      env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: socket, ...env },
      timeoutMs: 120_000,
    });
  const ok = (r: CliRun): string => {
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n--- ztwim up ---\n${up?.out() ?? ''}`);
    return r.stdout;
  };

  it('mtls-https.ts: node:https mTLS; the client refuses a server with another SPIFFE ID', async () => {
    const out = ok(await example('mtls-https.ts'));
    assert.match(out, new RegExp(`^server ${esc(ME)} on https://127\\.0\\.0\\.1:\\d+$`, 'm'));
    assert.match(out, new RegExp(`^client got: 200 hello ${esc(ME)}$`, 'm'));
    assert.match(out, new RegExp(`^client refused the server: spiffeid: unexpected ID "${esc(ME)}"$`, 'm'));
  });

  it('mtls-tls.ts: createMtlsServer/connectMtls; a server authorizing another ID cuts the client off', async () => {
    const out = ok(await example('mtls-tls.ts'));
    assert.match(out, new RegExp(`^member-of server replied: hello ${esc(ME)}$`, 'm'));
    assert.match(out, /^id-only server refused the client: connection closed without a reply$/m);
  });

  it('undici-fetch.ts: undici request and fetch through a SPIFFE mTLS Agent; an unexpected server is refused', async () => {
    const out = ok(await example('undici-fetch.ts'));
    assert.match(out, new RegExp(`^undici\\.request: 200 \\{"client":"${esc(ME)}","path":"/request"\\}$`, 'm'));
    assert.match(out, new RegExp(`^undici\\.fetch: 200 \\{"client":"${esc(ME)}","path":"/fetch"\\}$`, 'm'));
    assert.match(out, new RegExp(`^undici\\.fetch refused the server: spiffeid: unexpected ID "${esc(ME)}"$`, 'm'));
  });

  it('grpc-js.ts: grpc-js credentials from an X509Source; the call is authorized by SPIFFE ID; an unexpected server is refused', async () => {
    const out = ok(await example('grpc-js.ts'));
    assert.match(out, new RegExp(`^grpc reply: hello ${esc(ME)}$`, 'm'));
    assert.match(out, new RegExp(`^grpc channel refused the server: UNAVAILABLE .*unexpected ID "${esc(ME)}"`, 'm'));
  });

  it('express-jwt.ts: the middleware admits a JWT-SVID for its audience, 401 for another audience, a bad signature or none, 403 for a caller not allowed', async () => {
    const out = ok(await example('express-jwt.ts'));
    assert.match(out, new RegExp(`^JWT-SVID for the audience: 200 \\{"spiffe_id":"${esc(ME)}"\\}$`, 'm'));
    assert.match(out, /^JWT-SVID for another audience: 401 .*"code":"ERR_JWTSVID_AUDIENCE"/m);
    assert.match(out, /^tampered JWT-SVID: 401 .*"code":"ERR_JWTSVID_UNTRUSTED"/m);
    assert.match(out, /^no token: 401 \{"error":"a JWT-SVID bearer token is required"\}$/m);
    assert.match(out, /^GET \/admin \(only spiffe:\/\/example\.org\/ns\/admin\/sa\/ops\): 403 .*"code":"ERR_AUTHORIZATION"/m);
  });

  it('aws-sts.ts: AssumeRoleWithWebIdentity against moto; the request carried a valid JWT-SVID (audience sts.amazonaws.com) as WebIdentityToken', async () => {
    // moto answers any token: what this proves is the request, checked from moto's recording.
    const motoServer = requireTool('moto_server');
    const port = await freePort();
    const recording = join(tmp.path, 'moto-recording.jsonl');
    const moto = spawn(motoServer, ['-H', '127.0.0.1', '-p', String(port)], {
      env: { ...process.env, MOTO_ENABLE_RECORDING: 'True', MOTO_RECORDER_FILEPATH: recording },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(moto);
    let motoOut = '';
    moto.stdout.on('data', (d: Buffer) => (motoOut += d.toString()));
    moto.stderr.on('data', (d: Buffer) => (motoOut += d.toString()));
    await until(`moto_server listening on 127.0.0.1:${port}`, async () => {
      if (moto.exitCode !== null) assert.fail(`moto_server exited ${moto.exitCode}: ${motoOut}`);
      return new Promise<true | undefined>((resolve) => {
        const s = connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
        s.on('error', () => resolve(undefined));
      });
    });

    const out = ok(await example('aws-sts.ts', { AWS_STS_ENDPOINT: `http://127.0.0.1:${port}/`, AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/spiffe-demo' }));
    assert.match(out, new RegExp(`^JWT-SVID for ${esc(ME)}, audience sts\\.amazonaws\\.com, expires `, 'm'));
    assert.match(out, /^assumed arn:aws:sts::123456789012:assumed-role\/spiffe-demo\/user-\S+ \(session user-\S+\): AccessKeyId ASIA[A-Z0-9]{16}, expires /m);

    const requests = readFileSync(recording, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { method: string; body: string; body_encoded: boolean })
      .map((e) => new URLSearchParams(e.body_encoded ? Buffer.from(e.body, 'base64').toString() : e.body))
      .filter((p) => p.get('Action') === 'AssumeRoleWithWebIdentity');
    assert.equal(requests.length, 1, 'one AssumeRoleWithWebIdentity request reached moto');
    const req = requests[0] as URLSearchParams;
    assert.equal(req.get('RoleArn'), 'arn:aws:iam::123456789012:role/spiffe-demo');
    const token = req.get('WebIdentityToken') ?? '';
    const bundles = await JwtSource.create({ address: socket });
    try {
      const svid = await parseAndValidateJwtSvid(token, bundles, ['sts.amazonaws.com']);
      assert.equal(svid.id.toString(), ME, 'the WebIdentityToken is a JWT-SVID of the workload, signed by the trust domain');
    } finally {
      await bundles.close();
    }
  });

  it("vault-jwt.ts: Vault's JWT login (cap/jwt behind the login endpoint) grants demo-client; a role bound to other IDs refuses", async () => {
    const capjwt = goBuild(join(INTEROP_DIR, 'capjwt'));
    // Roles as `vault write auth/jwt/role/<name> role_type=jwt user_claim=sub bound_audiences=vault bound_claims_type=glob ...`.
    const roles: Record<string, { subGlob: string; policies: string[] }> = {
      'demo-client': { subGlob: 'spiffe://example.org/user/*', policies: ['default', 'demo'] },
      ops: { subGlob: 'spiffe://example.org/ns/admin/*', policies: ['default', 'ops'] },
    };
    const verdicts: { ok: boolean; user?: string; role?: string; error?: string }[] = [];
    const body = (req: IncomingMessage): Promise<string> =>
      new Promise((resolve) => {
        let s = '';
        req.on('data', (d: Buffer) => (s += d.toString()));
        req.on('end', () => resolve(s));
      });
    const vault = createServer((req, res) => {
      void (async () => {
        const reply = (status: number, v: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
        };
        if (req.method !== 'POST' || req.url !== '/v1/auth/jwt/login') return reply(404, { errors: [`no handler for ${req.method} ${req.url}`] });
        const { role, jwt } = JSON.parse(await body(req)) as { role: string; jwt: string };
        const r = roles[role];
        if (r === undefined) return reply(400, { errors: [`role "${role}" could not be found`] });
        const run = await runCommand(
          capjwt,
          ['-issuer', `http://localhost:${oidcPort}`, '-token', jwt, '-aud', 'vault', '-sub-glob', r.subGlob, '-role', role],
          tmp.path,
        );
        const v = JSON.parse(run.stdout) as { ok: boolean; user?: string; role?: string; error?: string };
        verdicts.push(v);
        if (!v.ok) return reply(400, { errors: [v.error] });
        return reply(200, {
          auth: { client_token: `stand-in.${randomBytes(12).toString('hex')}`, policies: r.policies, metadata: { role }, lease_duration: 2764800 },
        });
      })();
    });
    servers.push(vault);
    await new Promise<void>((resolve) => vault.listen(0, '127.0.0.1', resolve));
    const addr = `http://127.0.0.1:${(vault.address() as AddressInfo).port}`;

    const out = ok(await example('vault-jwt.ts', { VAULT_ADDR: addr, VAULT_ROLE: 'demo-client' }));
    assert.match(out, new RegExp(`^JWT-SVID for ${esc(ME)}, audience vault$`, 'm'));
    assert.match(out, /^vault login: role demo-client, policies default,demo, lease 2764800s$/m);
    assert.equal(verdicts.length, 1, 'the stand-in ran cap/jwt once');
    assert.equal(verdicts[0]?.ok, true, verdicts[0]?.error);
    assert.equal(verdicts[0]?.user, ME, 'cap/jwt accepted the token; the Vault user (user_claim sub) is the workload');
    assert.equal(verdicts[0]?.role, 'demo-client');

    const refused = await example('vault-jwt.ts', { VAULT_ADDR: addr, VAULT_ROLE: 'ops' });
    assert.equal(refused.status, 1, refused.stdout + refused.stderr);
    assert.match(
      refused.stdout,
      /^vault refused the login for role ops: 400 error validating claims: claim "sub" does not match any associated bound claim values$/m,
    );
    assert.equal(verdicts[1]?.ok, false);
  });
});
