// JWT-SVID claim and refusal rules (spire-core.md §4.1, §4.2: go-spiffe jwtsvid.ParseAndValidate
// and ParseInsecure over go-jose) that jwt-svid.test.ts and jwt-svid-rules.test.ts do not pin
// down, written for the survivors of the mutation run of jwt-svid.ts (docs/mutation-testing.md):
// which refusals keep the underlying error as their cause, the claim shapes go-jose decodes
// (null, a mixed "aud" list, a payload that is no object), the
// signature part that ParseInsecure still decodes, the leeway's own refusal, and the claims
// map's values being ordinary JSON data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as nodeSign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { JwtBundle, TrustDomain, isSpiffeError, parseAndValidateJwtSvid, parseInsecureJwtSvid, type SpiffeErrorCode } from '../index.ts';

const NOW = new Date('2026-01-01T00:00:00Z');
const now = NOW.getTime() / 1000;
const AUD = ['spiffe://example.org/api'];
const PARSE = 'jwtsvid: unable to parse JWT token';

const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

/** An ES256 key, its bundle for example.org and a signer of exact header and payload texts. */
function makeFixture() {
  const td = TrustDomain.parse('example.org');
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const bundle = JwtBundle.fromAuthorities(td, new Map([['ec', ec.publicKey.export({ format: 'jwk' }) as JsonWebKey]]));
  const jws = (payload: string | Record<string, unknown>, header: Record<string, unknown> = { alg: 'ES256', kid: 'ec', typ: 'JWT' }): string => {
    const input = `${b64(header)}.${b64(payload)}`;
    return `${input}.${nodeSign('sha256', Buffer.from(input), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    sub: 'spiffe://example.org/w',
    aud: AUD,
    iat: now - 10,
    exp: now + 300,
    ...over,
  });
  return { td, bundle, jws, claims };
}
let made: ReturnType<typeof makeFixture> | undefined;
/** Made on first use inside a test (a fixture at module level would crash the file under a mutant of the id/ parser). */
const fixture = (): ReturnType<typeof makeFixture> => (made ??= makeFixture());

/** Refused by both entry points (the signature is valid) with this code, text and cause. */
async function refusedBoth(
  token: string,
  code: SpiffeErrorCode,
  message: string,
  cause: 'cause' | 'none',
  opts: { leewaySeconds?: number } = {},
): Promise<void> {
  const { bundle } = fixture();
  const check = (e: unknown): boolean => {
    assert.ok(isSpiffeError(e), `not a SpiffeError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.message, message);
    if (cause === 'cause') assert.ok(e.cause instanceof Error, `${message}: cause kept`);
    else assert.equal(e.cause, undefined, `${message}: no cause`);
    return true;
  };
  await assert.rejects(parseAndValidateJwtSvid(token, bundle, AUD, { now: NOW, ...opts }), check);
  assert.throws(() => parseInsecureJwtSvid(token, AUD, { now: NOW, ...opts }), check);
}

test('JWT-SVID §4.2 step 5: an invalid subject keeps the SPIFFE ID error as the cause', async () => {
  const { jws, claims } = fixture();
  const token = jws(claims({ sub: 'spiffe://example.org/a/../b' }));
  await refusedBoth(token, 'ERR_JWTSVID_INVALID', 'jwtsvid: token has an invalid subject claim: spiffeid: path cannot contain dot segments', 'cause');
  await assert.rejects(parseAndValidateJwtSvid(token, fixture().bundle, AUD, { now: NOW }), (e: unknown) => {
    assert.ok(isSpiffeError(e) && isSpiffeError(e.cause, 'ERR_SPIFFEID_INVALID'), String(e));
    assert.equal(`jwtsvid: token has an invalid subject claim: ${e.cause.message}`, e.message);
    return true;
  });
});

test('JWT-SVID §4.2 step 6: a source without a bundle for the subject trust domain is kept as the cause', async () => {
  const { jws, claims, td } = fixture();
  const missing = new Error('no bundle here');
  const source = {
    getJwtBundleForTrustDomain(asked: TrustDomain): JwtBundle {
      assert.equal(asked.name, td.name);
      throw missing;
    },
  };
  await assert.rejects(parseAndValidateJwtSvid(jws(claims()), source, AUD, { now: NOW }), (e: unknown) => {
    assert.ok(isSpiffeError(e, 'ERR_JWTSVID_UNTRUSTED'), String(e));
    assert.equal(e.message, 'jwtsvid: no bundle found for trust domain "example.org"');
    assert.equal(e.cause, missing);
    return true;
  });
});

test('JWT-SVID §4.2 step 1: a header or payload that is not JSON keeps the JSON error as the cause; the other parse refusals have none', async () => {
  const { jws, claims } = fixture();
  const [h, p, s] = jws(claims()).split('.') as [string, string, string];
  await refusedBoth(`${b64('{"alg":')}.${p}.${s}`, 'ERR_JWTSVID_INVALID', PARSE, 'cause');
  await refusedBoth(`${h}.${b64('{"sub":')}.${s}`, 'ERR_JWTSVID_INVALID', PARSE, 'cause');
  await refusedBoth(`${h}=.${p}.${s}`, 'ERR_JWTSVID_INVALID', PARSE, 'none');
  await refusedBoth(jws(claims(), { alg: 'HS256', kid: 'ec' }), 'ERR_JWTSVID_INVALID', PARSE, 'none');
  await refusedBoth(jws(claims({ exp: undefined })), 'ERR_JWTSVID_INVALID', 'jwtsvid: token missing exp claim', 'none');
});

test('JWT-SVID §4.2 step 3: a payload that is JSON but not an object is not a claims set', async () => {
  const { jws } = fixture();
  for (const payload of ['[]', '"spiffe://example.org/w"', '7', 'true']) {
    await refusedBoth(jws(payload), 'ERR_JWTSVID_INVALID', PARSE, 'none');
  }
});

test('JWT-SVID §4.2 step 3: every member of an "aud" list must be a string', async () => {
  const { jws, claims } = fixture();
  const message = 'jwtsvid: unable to get claims from token: "aud" must be a string or an array of strings';
  await refusedBoth(jws(claims({ aud: [AUD[0], 7] })), 'ERR_JWTSVID_INVALID', message, 'none');
  await refusedBoth(jws(claims({ aud: [7, AUD[0]] })), 'ERR_JWTSVID_INVALID', message, 'none');
  await refusedBoth(jws(claims({ aud: { 0: AUD[0] } })), 'ERR_JWTSVID_INVALID', message, 'none');
});

test('JWT-SVID §4.2 step 3: a null "aud" is an empty audience (go-jose decodes null as absent)', async () => {
  const { jws, claims } = fixture();
  await refusedBoth(jws(claims({ aud: null })), 'ERR_JWTSVID_AUDIENCE', `jwtsvid: expected audience in ["${AUD[0]}"] (audience=[])`, 'none');
});

test('JWT-SVID §4.2 step 4: an empty "sub" is a missing subject, not an invalid SPIFFE ID', async () => {
  const { jws, claims } = fixture();
  await refusedBoth(jws(claims({ sub: '' })), 'ERR_JWTSVID_INVALID', 'jwtsvid: token missing subject claim', 'none');
});

test('JWT-SVID §4.2 step 3: "nbf" and "iat" must be numbers too, each named in the refusal', async () => {
  const { jws, claims } = fixture();
  for (const name of ['nbf', 'iat']) {
    await refusedBoth(jws(claims({ [name]: 'soon' })), 'ERR_JWTSVID_INVALID', `jwtsvid: unable to get claims from token: "${name}" must be a number`, 'none');
  }
});

test('JWT-SVID §4.2 step 10: a leeway that is negative or not a finite number is refused, not used', async () => {
  const { jws, claims } = fixture();
  // Long expired: a NaN leeway would make every time comparison false and accept it.
  const token = jws(claims({ iat: now - 7200, exp: now - 3600 }));
  for (const leewaySeconds of [Number.NaN, Number.POSITIVE_INFINITY, -1, -0.5]) {
    await refusedBoth(token, 'ERR_JWTSVID_INVALID', 'jwtsvid: leeway must be a non-negative number', 'none', { leewaySeconds });
  }
});

test('JWT-SVID §4.1: ParseInsecure skips the signature check but the signature part must still be base64url', () => {
  const { jws, claims } = fixture();
  const [h, p] = jws(claims()).split('.') as [string, string, string];
  for (const sig of ['AAAA=', 'AA+A', 'A', 'AB']) {
    assert.throws(
      () => parseInsecureJwtSvid(`${h}.${p}.${sig}`, AUD, { now: NOW }),
      (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_INVALID') && e.message === PARSE,
      sig,
    );
  }
  assert.equal(parseInsecureJwtSvid(`${h}.${p}.AA`, AUD, { now: NOW }).id.path, '/w');
});

test('JWT-SVID §4.2 step 11: nested claim objects are ordinary JSON data, as JSON.parse gives them, "__proto__" included', async () => {
  const { jws, bundle } = fixture();
  const payload = `{"sub":"spiffe://example.org/w","aud":"${AUD[0]}","exp":${now + 300},"ext":{"a":1,"b":{"c":[true,null]},"__proto__":{"admin":true}}}`;
  const svid = await parseAndValidateJwtSvid(jws(payload), bundle, AUD, { now: NOW });
  const ext = svid.claims['ext'] as Record<string, unknown>;
  const expected = (JSON.parse(payload) as { ext: Record<string, unknown> }).ext;
  assert.deepEqual(Object.getOwnPropertyDescriptors(ext), Object.getOwnPropertyDescriptors(expected));
  assert.equal(Object.getPrototypeOf(ext), Object.prototype);
  assert.equal((ext as { admin?: unknown }).admin, undefined, 'the "__proto__" member is data, not a prototype');
  assert.deepEqual(Object.keys(ext), ['a', 'b', '__proto__']);
  // The caller's copy: changeable like any parsed JSON.
  ext['a'] = 2;
  delete ext['b'];
  assert.deepEqual(Object.keys(ext), ['a', '__proto__']);
});

test('JWT-SVID §4.2 step 1: a compact JWS has exactly three non-empty parts, checked before any part is decoded', async () => {
  const { jws, claims } = fixture();
  const [h, p, s] = jws(claims()).split('.') as [string, string, string];
  // Each part alone is valid base64url and the first three verify: only the count is wrong.
  for (const token of [`${h}.${p}.${s}.${s}`, `${h}.${p}.${s}.`, `${h}.${p}.${s}.${p}.${s}`, `${h}.${p}`]) {
    await refusedBoth(token, 'ERR_JWTSVID_INVALID', PARSE, 'none');
  }
  // An empty part is refused as such (no JSON error as the cause), the signature too although
  // ParseInsecure never checks it.
  for (const token of [`.${p}.${s}`, `${h}..${s}`, `${h}.${p}.`]) await refusedBoth(token, 'ERR_JWTSVID_INVALID', PARSE, 'none');
});

test('JWT-SVID §2.2: without kid, an ES384 token is verified only against P-384 authorities', async () => {
  const { td, claims } = fixture();
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const jwk = (k: KeyObject): JsonWebKey => k.export({ format: 'jwk' }) as JsonWebKey;
  const input = `${b64({ alg: 'ES384', typ: 'JWT' })}.${b64(claims())}`;
  const token = `${input}.${nodeSign('sha384', Buffer.from(input), { key: p384.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  const others = JwtBundle.fromAuthorities(
    td,
    new Map([
      ['p256', jwk(p256.publicKey)],
      ['p521', jwk(p521.publicKey)],
    ]),
  );
  await assert.rejects(
    parseAndValidateJwtSvid(token, others, AUD, { now: NOW }),
    (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_UNTRUSTED') && e.message === 'jwtsvid: no JWT authority for alg "ES384" found for trust domain "example.org"',
  );
  others.addAuthority('p384', jwk(p384.publicKey));
  assert.equal((await parseAndValidateJwtSvid(token, others, AUD, { now: NOW })).id.path, '/w');
});
