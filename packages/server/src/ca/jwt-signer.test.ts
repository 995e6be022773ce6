import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProtectedHeader, decodeJwt, importJWK, jwtVerify, SignJWT } from 'jose';
import { cryptoRandom, isZtwimError, randomAlnum } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import type { KeyType } from '../keymanager/key-manager.ts';
import { P256, P384, RSA2048, type Pair } from './fixtures.test-util.ts';
import { JwtSigner, type JwtSignerConfig } from './jwt-signer.ts';

const td = TrustDomain.parse('example.org');
const sub = SpiffeId.parse('spiffe://example.org/ns/default/sa/web');
const DAY = 86_400_000;

function signer(clock: FakeClock, keyType: KeyType, pair: Pair, extra: Partial<JwtSignerConfig> = {}): JwtSigner {
  return new JwtSigner({
    trustDomain: td,
    kid: randomAlnum(cryptoRandom, 32),
    keyType,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    notAfter: new Date(clock.nowMs() + DAY),
    clock,
    jwtSvidTtlMs: 300_000,
    ...extra,
  });
}

describe('JwtSigner', () => {
  const cases: Array<{ keyType: KeyType; pair: Pair; alg: string; coord?: number }> = [
    { keyType: 'ec-p256', pair: P256, alg: 'ES256', coord: 32 },
    { keyType: 'ec-p384', pair: P384, alg: 'ES384', coord: 48 },
    { keyType: 'rsa-2048', pair: RSA2048, alg: 'RS256' },
  ];
  for (const c of cases) {
    it(`signs ${c.alg} JWT-SVIDs that jose verifies with the published JWK`, async () => {
      const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 0, 700));
      const s = signer(clock, c.keyType, c.pair);
      const svid = await s.signJwtSvid({ spiffeId: sub, audience: ['aud-1', '', 'aud-2'] });
      const header = decodeProtectedHeader(svid.token);
      assert.deepEqual(header, { alg: c.alg, kid: s.kid, typ: 'JWT' });
      assert.match(s.kid, /^[a-zA-Z0-9]{32}$/);
      const jwk = s.authority.publicKey;
      assert.equal(jwk.kid, s.kid);
      assert.equal(jwk.alg, c.alg);
      assert.equal('d' in jwk, false);
      if (c.coord) {
        assert.equal(Buffer.from(jwk.x as string, 'base64url').length, c.coord);
        assert.equal(Buffer.from(jwk.y as string, 'base64url').length, c.coord);
      }
      const { payload } = await jwtVerify(svid.token, await importJWK(jwk, c.alg), {
        audience: 'aud-2',
        algorithms: [c.alg],
        currentDate: clock.now(),
        typ: 'JWT',
      });
      const nowS = Math.floor(clock.nowMs() / 1000);
      assert.deepEqual(payload, { sub: sub.toString(), aud: ['aud-1', 'aud-2'], iat: nowS, exp: nowS + 300 });
      assert.equal(svid.expiresAt.getTime(), (nowS + 300) * 1000);
    });
  }

  it('keeps aud an array for a single audience, sets iss when configured, and adds jti on request', async () => {
    const clock = new FakeClock();
    const s = signer(clock, 'ec-p256', P256, { issuer: 'https://oidc.example.org' });
    const svid = await s.signJwtSvid({ spiffeId: sub, audience: ['only'], ttlMs: 60_000, withJti: true });
    const payload = JSON.parse(Buffer.from(svid.token.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(payload.aud, ['only']);
    assert.equal(payload.iss, 'https://oidc.example.org');
    assert.equal(payload.exp, (payload.iat as number) + 60);
    assert.match(payload.jti as string, /^[A-Za-z0-9_-]{22}$/);
  });

  it('caps exp at the key expiry', async () => {
    const clock = new FakeClock();
    const s = signer(clock, 'ec-p256', P256, { notAfter: new Date(clock.nowMs() + 90_000) });
    const svid = await s.signJwtSvid({ spiffeId: sub, audience: ['a'] });
    assert.equal(svid.expiresAt.getTime(), clock.nowMs() + 90_000);
    clock.advance(90_000);
    await assert.rejects(s.signJwtSvid({ spiffeId: sub, audience: ['a'] }), (e: unknown) => isZtwimError(e, 'ERR_FAILED_PRECONDITION'));
  });

  const bad: Array<{ name: string; audience: string[]; id?: SpiffeId; frag: string }> = [
    { name: 'empty audience', audience: [], frag: 'invalid JWT-SVID audience: cannot be empty' },
    { name: 'only empty strings', audience: ['', ''], frag: 'cannot be empty' },
    { name: 'foreign trust domain', audience: ['a'], id: SpiffeId.parse('spiffe://other.org/x'), frag: 'not in trust domain' },
  ];
  for (const c of bad) {
    it(`rejects ${c.name}`, async () => {
      const s = signer(new FakeClock(), 'ec-p256', P256);
      await assert.rejects(
        s.signJwtSvid({ spiffeId: c.id ?? sub, audience: c.audience }),
        (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && e.message.includes(c.frag),
      );
    });
  }

  for (const c of cases) {
    it(`${c.alg}: produces the same JWS as jose's SignJWT for the same header, claims and key`, async () => {
      const clock = new FakeClock();
      const s = signer(clock, c.keyType, c.pair, { issuer: 'https://issuer.example' });
      const ours = (await s.signJwtSvid({ spiffeId: sub, audience: ['ünï', 'b'], withJti: true })).token;
      const theirs = await new SignJWT(decodeJwt(ours)).setProtectedHeader(decodeProtectedHeader(ours) as { alg: string }).sign(c.pair.privateKey);
      const [h1, p1, s1] = ours.split('.');
      const [h2, p2, s2] = theirs.split('.');
      assert.equal(h1, h2);
      assert.equal(p1, p2);
      if (c.alg === 'RS256') assert.equal(s1, s2, 'PKCS#1 v1.5 is deterministic: identical signatures');
      else assert.equal(Buffer.from(s1 as string, 'base64url').length, Buffer.from(s2 as string, 'base64url').length, 'raw r||s length');
    });
  }

  it('a token from another key does not verify against this JWK', async () => {
    const clock = new FakeClock();
    const a = signer(clock, 'ec-p256', P256);
    const b = signer(clock, 'ec-p384', P384);
    const svid = await b.signJwtSvid({ spiffeId: sub, audience: ['x'] });
    await assert.rejects(jwtVerify(svid.token, await importJWK(a.authority.publicKey, 'ES256'), { currentDate: clock.now() }));
  });
});
