// JWT-SVID rules (spire-core.md §4.1, §4.2: go-spiffe jwtsvid.ParseAndValidate over go-jose) that
// jwt-svid.test.ts does not pin down: written for the survivors of the mutation run of
// jwt-svid.ts (docs/mutation-testing.md). A separate file, so the mutants that jwt-svid.test.ts
// kills keep their incremental results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, sign as nodeSign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { JwtBundle, TrustDomain, isSpiffeError, parseAndValidateJwtSvid, parseInsecureJwtSvid, type SpiffeErrorCode } from '../index.ts';

const td = TrustDomain.parse('example.org');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const bundle = JwtBundle.fromAuthorities(td, new Map([['ec', ec.publicKey.export({ format: 'jwk' }) as JsonWebKey]]));
const NOW = new Date('2026-01-01T00:00:00Z');
const now = NOW.getTime() / 1000;
const AUD = ['spiffe://example.org/api'];

const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

/** A compact ES256 JWS over exactly these header and payload texts (no JSON re-encoding by a library). */
function jws(header: string | Record<string, unknown>, payload: string | Record<string, unknown>, key: KeyObject = ec.privateKey): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${nodeSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}
const HEADER = { alg: 'ES256', kid: 'ec', typ: 'JWT' };
const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  sub: 'spiffe://example.org/w',
  aud: AUD,
  iat: now - 10,
  exp: now + 300,
  ...over,
});

async function refused(token: string, code: SpiffeErrorCode, message: string, audience: readonly string[] = AUD): Promise<void> {
  await assert.rejects(parseAndValidateJwtSvid(token, bundle, audience, { now: NOW }), (e: unknown) => {
    assert.ok(isSpiffeError(e), `not a SpiffeError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.message, message);
    return true;
  });
}
const PARSE = 'jwtsvid: unable to parse JWT token';

test('JWT-SVID §4.2 step 1: a token that is not a string is not a JWS', async () => {
  await refused(undefined as unknown as string, 'ERR_JWTSVID_INVALID', PARSE);
});

test('JWT-SVID §4.2 step 1: a compact JWS with an empty part is malformed', async () => {
  const [h, p, s] = jws(HEADER, claims()).split('.') as [string, string, string];
  await refused(`${h}.${p}.`, 'ERR_JWTSVID_INVALID', PARSE);
  await refused(`${h}..${s}`, 'ERR_JWTSVID_INVALID', PARSE);
  await refused(`.${p}.${s}`, 'ERR_JWTSVID_INVALID', PARSE);
});

test('JWT-SVID §4.1: compact JWS only: a validly signed token with a "b64" or "enc" header is refused', async () => {
  await refused(jws({ ...HEADER, b64: false }, claims()), 'ERR_JWTSVID_INVALID', PARSE);
  await refused(jws({ ...HEADER, enc: 'A256GCM' }, claims()), 'ERR_JWTSVID_INVALID', PARSE);
});

test('JWT-SVID §4.2 step 3: a "sub" claim that is not a string fails the claim decoding', async () => {
  await refused(jws(HEADER, claims({ sub: 42 })), 'ERR_JWTSVID_INVALID', 'jwtsvid: unable to get claims from token: "sub" must be a string');
});

test('JWT-SVID §4.2 step 4: a null "exp" is a missing exp (go-jose decodes null as absent)', async () => {
  await refused(jws(HEADER, claims({ exp: null })), 'ERR_JWTSVID_INVALID', 'jwtsvid: token missing exp claim');
});

test('JWT-SVID §4.2 step 3: a NumericDate too large for a number is refused', async () => {
  await refused(
    jws(HEADER, `{"sub":"spiffe://example.org/w","aud":"a","exp":123456789012345678901}`),
    'ERR_JWTSVID_INVALID',
    'jwtsvid: unable to get claims from token: "exp" must be a number',
  );
});

test('JWT-SVID §4.2 step 11: NumericDates are whole seconds (go-jose truncates fractions)', async () => {
  const svid = await parseAndValidateJwtSvid(jws(HEADER, claims({ exp: now + 300.75, iat: now - 10.5 })), bundle, AUD, { now: NOW });
  assert.equal(svid.expiry.getTime(), (now + 300) * 1000);
  assert.equal(svid.issuedAt?.getTime(), (now - 11) * 1000);
});

test('JWT-SVID §4.2 step 11: without "iat" the SVID has no issue time', async () => {
  const svid = await parseAndValidateJwtSvid(jws(HEADER, claims({ iat: undefined })), bundle, AUD, { now: NOW });
  assert.equal(svid.issuedAt, undefined);
});

test('JWT-SVID §4.2 step 11: the claims map holds every claim, nested values and 64-bit integers as plain numbers', async () => {
  const payload = `{"sub":"spiffe://example.org/w","aud":["spiffe://example.org/api"],"exp":${now + 300},"x":{"n":[1,{"m":"v"},9007199254740993],"big":9007199254740993}}`;
  const svid = await parseAndValidateJwtSvid(jws(HEADER, payload), bundle, AUD, { now: NOW });
  assert.deepEqual(svid.claims, {
    sub: 'spiffe://example.org/w',
    aud: AUD,
    exp: now + 300,
    x: { n: [1, { m: 'v' }, 9007199254740992], big: 9007199254740992 },
  });
  assert.equal(Object.isFrozen(svid.claims), true);
});

test('JWT-SVID §4.2 step 10: exp, nbf and iat exactly at the 30 s leeway are accepted (go-jose compares strictly)', async () => {
  const t = jws(HEADER, claims({ exp: now - 30, nbf: now + 30, iat: now + 30 }));
  assert.equal((await parseAndValidateJwtSvid(t, bundle, AUD, { now: NOW })).id.path, '/w');
  assert.equal(parseInsecureJwtSvid(t, AUD, { now: NOW }).id.path, '/w');
  await refused(jws(HEADER, claims({ nbf: now + 31 })), 'ERR_JWTSVID_INVALID', 'jwtsvid: token not valid yet (nbf)');
  await refused(jws(HEADER, claims({ iat: now + 31 })), 'ERR_JWTSVID_INVALID', 'jwtsvid: token issued in the future (iat)');
});

test('JWT-SVID §4.2 step 10: a leeway of 0 is allowed and checks the times exactly', async () => {
  const t = jws(HEADER, claims({ exp: now, nbf: now, iat: now }));
  assert.equal((await parseAndValidateJwtSvid(t, bundle, AUD, { now: NOW, leewaySeconds: 0 })).id.path, '/w');
  await assert.rejects(parseAndValidateJwtSvid(t, bundle, AUD, { now: new Date(NOW.getTime() + 1000), leewaySeconds: 0 }), (e: unknown) =>
    isSpiffeError(e, 'ERR_JWTSVID_EXPIRED'),
  );
});

test('JWT-SVID §4.2 step 10: without a validation time the current time is used', async () => {
  const real = Math.floor(Date.now() / 1000);
  const fresh = jws(HEADER, claims({ iat: real - 10, exp: real + 600 }));
  assert.equal((await parseAndValidateJwtSvid(fresh, bundle, AUD)).id.path, '/w');
  assert.equal(parseInsecureJwtSvid(fresh, AUD).id.path, '/w');
  const stale = jws(HEADER, claims({ iat: real - 7200, exp: real - 3600 }));
  await assert.rejects(parseAndValidateJwtSvid(stale, bundle, AUD), (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_EXPIRED'));
});

test('JWT-SVID §4.1: the expected audience must be a list of non-empty strings', async () => {
  const message = 'jwtsvid: expected audience must be a non-empty list of non-empty strings';
  const t = jws(HEADER, claims());
  for (const audience of [[''], [AUD[0], ''], [7], 'spiffe://example.org/api']) {
    await refused(t, 'ERR_JWTSVID_AUDIENCE', message, audience as readonly string[]);
    assert.throws(
      () => parseInsecureJwtSvid(t, audience as readonly string[], { now: NOW }),
      (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_AUDIENCE') && e.message === message,
    );
  }
});

test('JWT-SVID §4.1: a token signed with each of the nine permitted algorithms is accepted, with or without kid', async () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const jwk = (k: KeyObject): JsonWebKey => k.export({ format: 'jwk' }) as JsonWebKey;
  const all = JwtBundle.fromAuthorities(
    td,
    new Map([
      ['p256', jwk(ec.publicKey)],
      ['p384', jwk(p384.publicKey)],
      ['p521', jwk(p521.publicKey)],
      ['rsa', jwk(rsa.publicKey)],
    ]),
  );
  const hashOf = (alg: string): string => `sha${alg.slice(2)}`;
  const cases: Array<[string, string, KeyObject]> = [
    ['ES256', 'p256', ec.privateKey],
    ['ES384', 'p384', p384.privateKey],
    ['ES512', 'p521', p521.privateKey],
    ...['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'].map((alg): [string, string, KeyObject] => [alg, 'rsa', rsa.privateKey]),
  ];
  for (const [alg, kid, key] of cases) {
    for (const header of [{ alg, kid, typ: 'JWT' }, { alg }]) {
      const input = `${b64(header)}.${b64(claims())}`;
      const sig = alg.startsWith('ES')
        ? nodeSign(hashOf(alg), Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
        : alg.startsWith('PS')
          ? nodeSign(hashOf(alg), Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
          : nodeSign(hashOf(alg), Buffer.from(input), key);
      const svid = await parseAndValidateJwtSvid(`${input}.${sig.toString('base64url')}`, all, AUD, { now: NOW });
      assert.equal(svid.id.toString(), 'spiffe://example.org/w', `${alg} ${JSON.stringify(header)}`);
    }
  }
});
