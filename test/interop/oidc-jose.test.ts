/**
 * Interop: jose's createRemoteJWKSet + jwtVerify against the provider's jwks_uri (found
 * through the discovery document) over TLS. jose's own fetch rules apply: redirect 'manual',
 * 200 required, JSON body; key selection by kid, kty/crv, alg and use.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { createRemoteJWKSet, customFetch, jwtVerify, errors } from 'jose';
import { startInteropProvider, mintToken, SUBJECT, type InteropEnv } from './oidc-support.ts';

let env: InteropEnv;

/** A fetch for jose that trusts the test CA and, like jose's default, never follows redirects. */
function caFetch(ca: string) {
  return (url: string, init: { headers?: Record<string, string> | Headers; signal?: AbortSignal }): Promise<Response> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => {
        headers[k] = v;
      });
      const req = request(url, { ca, headers, ...(init.signal === undefined ? {} : { signal: init.signal }) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: h }));
        });
      });
      req.on('error', reject);
      req.end();
    });
}

before(async () => {
  env = await startInteropProvider();
});

after(async () => {
  await env?.close();
});

async function discover(): Promise<{ issuer: string; jwks_uri: string }> {
  const res = await caFetch(env.ca.certPem)(`${env.issuer}/.well-known/openid-configuration`, {});
  assert.equal(res.status, 200);
  return (await res.json()) as { issuer: string; jwks_uri: string };
}

test('jose createRemoteJWKSet + jwtVerify accept ES256 and RS256 JWT-SVIDs', async () => {
  const doc = await discover();
  assert.equal(doc.issuer, env.issuer);
  const jwks = createRemoteJWKSet(new URL(doc.jwks_uri), { [customFetch]: caFetch(env.ca.certPem) });
  for (const key of [env.es256, env.rs256]) {
    const { payload, protectedHeader } = await jwtVerify(await mintToken(key, env.issuer), jwks, {
      issuer: env.issuer,
      audience: 'vault',
      algorithms: ['RS256', 'ES256', 'ES384'],
      typ: 'JWT',
    });
    assert.equal(payload.sub, SUBJECT);
    assert.equal(protectedHeader.kid, key.kid);
  }
});

test('jose refuses wrong audience, expired tokens and foreign keys', async () => {
  const doc = await discover();
  const jwks = createRemoteJWKSet(new URL(doc.jwks_uri), { [customFetch]: caFetch(env.ca.certPem) });
  const opts = { issuer: env.issuer, audience: 'vault', algorithms: ['RS256', 'ES256'] };
  await assert.rejects(jwtVerify(await mintToken(env.es256, env.issuer, { aud: 'other' }), jwks, opts), errors.JWTClaimValidationFailed);
  await assert.rejects(jwtVerify(await mintToken(env.rs256, env.issuer, { iatOffset: -600, expOffset: -1 }), jwks, opts), errors.JWTExpired);
  await assert.rejects(jwtVerify(await mintToken(env.foreign, env.issuer), jwks, opts), errors.JWKSNoMatchingKey);
  await assert.rejects(jwtVerify(await mintToken(env.es256, 'https://other-issuer.example'), jwks, opts), errors.JWTClaimValidationFailed);
});
