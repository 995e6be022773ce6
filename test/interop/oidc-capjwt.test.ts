/**
 * Interop: HashiCorp cap/jwt (the library behind Vault's JWT auth) validates JWT-SVIDs
 * through our OIDC discovery provider, configured like a Vault role: oidc_discovery_url +
 * oidc_discovery_ca_pem, bound_audiences, bound_claims_type=glob on sub, user_claim=sub.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startInteropProvider, mintToken, makeSigningKey, SUBJECT, type InteropEnv } from './oidc-support.ts';

const run = promisify(execFile);
const moduleDir = new URL('./capjwt/', import.meta.url).pathname;
let bin = '';
let env: InteropEnv;

interface CapResult {
  ok: boolean;
  stage?: string;
  error?: string;
  sub?: string;
  claims?: Record<string, unknown>;
}

function findGo(): string {
  for (const candidate of ['go', '/usr/local/go/bin/go']) {
    try {
      execFileSync(candidate, ['version'], { stdio: 'pipe' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('go is required for the cap/jwt interop test (install Go >= 1.24)');
}

before(async () => {
  const go = findGo();
  bin = join(mkdtempSync(join(tmpdir(), 'ztwim-capjwt-')), 'capjwt');
  // Builds against github.com/hashicorp/cap (go.mod/go.sum in test/interop/capjwt).
  try {
    execFileSync(go, ['build', '-o', bin, '.'], { cwd: moduleDir, stdio: 'pipe', timeout: 300_000 });
  } catch (e) {
    throw new Error(`go build of test/interop/capjwt failed: ${String((e as { stderr?: Buffer }).stderr ?? e)}`);
  }
  env = await startInteropProvider();
});

after(async () => {
  await env?.close();
});

async function validate(token: string, o: { aud?: string; subGlob?: string; issuer?: string; algs?: string } = {}): Promise<CapResult> {
  const args = [
    '-issuer',
    o.issuer ?? env.issuer,
    '-ca',
    env.caPath,
    '-token',
    token,
    '-aud',
    o.aud ?? 'vault',
    '-sub-glob',
    o.subGlob ?? 'spiffe://example.org/ns/demo/*',
    ...(o.algs === undefined ? [] : ['-algs', o.algs]),
  ];
  try {
    const { stdout } = await run(bin, args, { timeout: 30_000 });
    return JSON.parse(stdout) as CapResult;
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (err.code === 1 && err.stdout !== undefined && err.stdout !== '') return JSON.parse(err.stdout) as CapResult;
    throw new Error(`capjwt failed unexpectedly: ${err.stderr ?? String(e)}`);
  }
}

test('cap/jwt accepts ES256 and RS256 JWT-SVIDs with the right audience and subject', async () => {
  for (const key of [env.es256, env.rs256]) {
    const r = await validate(await mintToken(key, env.issuer));
    assert.equal(r.ok, true, `${key.alg}: ${JSON.stringify(r)}`);
    assert.equal(r.sub, SUBJECT);
    assert.equal(r.claims?.iss, env.issuer);
    assert.deepEqual(r.claims?.aud, ['vault']);
  }
});

test('cap/jwt with a Vault glob bound claim: * spans path segments', async () => {
  const r = await validate(await mintToken(env.es256, env.issuer, { sub: 'spiffe://example.org/ns/demo/sa/x/y' }), {
    subGlob: 'spiffe://example.org/*',
  });
  assert.equal(r.ok, true, JSON.stringify(r));
});

test('cap/jwt refuses the wrong audience', async () => {
  const r = await validate(await mintToken(env.es256, env.issuer, { aud: 'someone-else' }));
  assert.equal(r.ok, false);
  assert.equal(r.stage, 'validate');
  assert.match(r.error ?? '', /invalid audience \(aud\) claim/);
});

test('cap/jwt refuses the wrong subject (bound_claims glob)', async () => {
  const r = await validate(await mintToken(env.rs256, env.issuer, { sub: 'spiffe://example.org/ns/other/sa/client' }));
  assert.equal(r.ok, false);
  assert.equal(r.stage, 'bound_claims');
  assert.match(r.error ?? '', /claim "sub" does not match any associated bound claim values/);
});

test('cap/jwt refuses an expired token (beyond the 60 s skew)', async () => {
  const r = await validate(await mintToken(env.es256, env.issuer, { iatOffset: -600, expOffset: -61 - 60 }));
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /invalid expiration time \(exp\) claim: token is expired/);
});

test('cap/jwt refuses a token from another trust domain signed by our key', async () => {
  const r = await validate(await mintToken(env.es256, env.issuer, { sub: 'spiffe://other.org/ns/demo/sa/client' }));
  assert.equal(r.ok, false);
  assert.equal(r.stage, 'bound_claims');
});

test('cap/jwt refuses a token from another issuer (unpublished key, foreign iss)', async () => {
  const r = await validate(await mintToken(env.foreign, 'https://other-issuer.example'));
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /error verifying token signature/);
  // Even our own key with a foreign iss fails the issuer check.
  const r2 = await validate(await mintToken(env.es256, 'https://other-issuer.example'));
  assert.equal(r2.ok, false);
  assert.match(r2.error ?? '', /invalid issuer \(iss\) claim/);
});

test('cap/jwt discovery refuses an issuer URL that differs from the served issuer', async () => {
  const r = await validate(await mintToken(env.es256, env.issuer), { issuer: `${env.issuer}/` });
  assert.equal(r.ok, false);
  assert.equal(r.stage, 'discovery');
  assert.match(r.error ?? '', /issuer did not match the returned issuer/);
});

test('cap/jwt refuses ES256 when the role allows only RS256', async () => {
  const r = await validate(await mintToken(env.es256, env.issuer), { algs: 'RS256' });
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /token signed with unexpected algorithm/);
});

test('cap/jwt picks up a key added to the source (rotation, refetch on unknown kid)', async () => {
  const next = await makeSigningKey('RS256', 'rs256-kid-0000000000000000000002');
  const before = await validate(await mintToken(next, env.issuer));
  assert.equal(before.ok, false);
  env.publish([env.es256, env.rs256, next]);
  const afterRotation = await validate(await mintToken(next, env.issuer));
  assert.equal(afterRotation.ok, true, JSON.stringify(afterRotation));
  env.publish([env.es256, env.rs256]);
});
