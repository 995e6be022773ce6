/**
 * Interop: PyJWT's PyJWKClient, reached through our discovery document over TLS, validates
 * JWT-SVIDs (ES256 and RS256) and refuses wrong audience, expired tokens and foreign keys.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { startInteropProvider, mintToken, SUBJECT, type InteropEnv } from './oidc-support.ts';

const run = promisify(execFile);
const script = new URL('./pyjwt/validate.py', import.meta.url).pathname;
const python = process.env.PYTHON ?? 'python3';
let env: InteropEnv;

interface PyResult {
  ok: boolean;
  error_type?: string;
  error?: string;
  claims?: Record<string, unknown>;
}

before(async () => {
  try {
    execFileSync(python, ['-c', 'import jwt, cryptography; assert tuple(int(x) for x in jwt.__version__.split(".")[:2]) >= (2, 9)'], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`PyJWT >= 2.9 with cryptography is required (pip install PyJWT cryptography): ${String((e as { stderr?: Buffer }).stderr ?? e)}`);
  }
  env = await startInteropProvider();
});

after(async () => {
  await env?.close();
});

async function validate(token: string, aud = 'vault'): Promise<PyResult> {
  try {
    const { stdout } = await run(python, [script, env.issuer, env.caPath, token, aud], { timeout: 30_000 });
    return JSON.parse(stdout) as PyResult;
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (err.code === 1 && err.stdout !== undefined && err.stdout !== '') return JSON.parse(err.stdout) as PyResult;
    throw new Error(`pyjwt validator failed unexpectedly: ${err.stderr ?? String(e)}`);
  }
}

test('PyJWKClient + jwt.decode accept ES256 and RS256 JWT-SVIDs', async () => {
  for (const key of [env.es256, env.rs256]) {
    const r = await validate(await mintToken(key, env.issuer));
    assert.equal(r.ok, true, `${key.alg}: ${JSON.stringify(r)}`);
    assert.equal(r.claims?.sub, SUBJECT);
  }
});

test('PyJWT refuses the wrong audience', async () => {
  const r = await validate(await mintToken(env.rs256, env.issuer, { aud: 'other' }));
  assert.equal(r.ok, false);
  assert.equal(r.error_type, 'InvalidAudienceError');
});

test('PyJWT refuses an expired token', async () => {
  const r = await validate(await mintToken(env.es256, env.issuer, { iatOffset: -600, expOffset: -60 }));
  assert.equal(r.ok, false);
  assert.equal(r.error_type, 'ExpiredSignatureError');
});

test('PyJWT refuses a token signed by a key the provider does not publish', async () => {
  const r = await validate(await mintToken(env.foreign, 'https://other-issuer.example'));
  assert.equal(r.ok, false);
  assert.equal(r.error_type, 'PyJWKClientError');
  assert.match(r.error ?? '', /Unable to find a signing key that matches/);
});

test('PyJWT refuses our key with a foreign issuer', async () => {
  const r = await validate(await mintToken(env.es256, 'https://other-issuer.example'));
  assert.equal(r.ok, false);
  assert.equal(r.error_type, 'InvalidIssuerError');
});
