import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as nodeSign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { JwtBundle, JwtBundleSet, TrustDomain, isSpiffeError, parseAndValidateJwtSvid, parseInsecureJwtSvid, type SpiffeErrorCode } from '../index.ts';

const td = TrustDomain.parse('example.org');
const otherTd = TrustDomain.parse('other.org');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const jwk = (k: KeyObject): JsonWebKey => k.export({ format: 'jwk' }) as JsonWebKey;

const bundle = JwtBundle.fromAuthorities(
  td,
  new Map([
    ['ec', jwk(ec.publicKey)],
    ['ec384', jwk(ec384.publicKey)],
    ['rsa', jwk(rsa.publicKey)],
    ['ed', jwk(ed.publicKey)],
  ]),
);
const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const set = new JwtBundleSet([bundle, JwtBundle.fromAuthorities(otherTd, new Map([['other', jwk(otherKey.publicKey)]]))]);

const NOW = new Date('2026-01-01T00:00:00Z');
const now = Math.floor(NOW.getTime() / 1000);
const AUD = ['spiffe://example.org/api'];

const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const c: Record<string, unknown> = { sub: 'spiffe://example.org/workload', aud: AUD, iat: now - 10, exp: now + 300, ...over };
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  return c;
}

async function sign(payload: Record<string, unknown>, header: Record<string, unknown> = {}, key: KeyObject | Uint8Array = ec.privateKey): Promise<string> {
  const h: Record<string, unknown> = { alg: 'ES256', kid: 'ec', typ: 'JWT', ...header };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader(h as { alg: string }).sign(key);
}

test('parseAndValidateJwtSvid accepts ES256, ES384, RS256 and PS256 tokens from the subject trust domain', async () => {
  const tokens = [
    await sign(claims()),
    await sign(claims(), { alg: 'ES384', kid: 'ec384' }, ec384.privateKey),
    await sign(claims(), { alg: 'RS256', kid: 'rsa' }, rsa.privateKey),
    await sign(claims(), { alg: 'PS256', kid: 'rsa', typ: 'JOSE' }, rsa.privateKey),
    await sign(claims({ aud: 'spiffe://example.org/api' }), { typ: undefined }),
  ];
  for (const t of tokens) {
    const svid = await parseAndValidateJwtSvid(t, set, AUD, { now: NOW });
    assert.equal(svid.id.toString(), 'spiffe://example.org/workload');
    assert.deepEqual(svid.audience, AUD);
    assert.equal(svid.expiry.getTime(), (now + 300) * 1000);
    assert.equal(svid.issuedAt?.getTime(), (now - 10) * 1000);
    assert.equal(svid.claims['sub'], 'spiffe://example.org/workload');
    assert.equal(svid.marshal(), t);
  }
});

test('parseAndValidateJwtSvid accepts any one of several expected audiences and a root subject ID', async () => {
  const t = await sign(claims({ sub: 'spiffe://example.org', aud: ['x', 'y'] }));
  const svid = await parseAndValidateJwtSvid(t, bundle, ['z', 'y'], { now: NOW });
  assert.equal(svid.id.toString(), 'spiffe://example.org');
});

interface Case {
  readonly name: string;
  readonly token: () => Promise<string>;
  readonly code: SpiffeErrorCode;
  readonly message: string;
  readonly audience?: readonly string[];
  readonly now?: Date;
  readonly leewaySeconds?: number;
}

const spkiPem = ec.publicKey.export({ format: 'pem', type: 'spki' }) as string;
const rsaSpkiPem = rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string;
const PARSE = 'jwtsvid: unable to parse JWT token';
const CRYPTO = 'jwtsvid: unable to get claims from token: error in cryptographic primitive';

const cases: Case[] = [
  { name: 'alg none, empty signature', token: async () => `${b64({ alg: 'none', kid: 'ec' })}.${b64(claims())}.`, code: 'ERR_JWTSVID_INVALID', message: PARSE },
  {
    name: 'alg none with a signature',
    token: async () => `${b64({ alg: 'none', kid: 'ec' })}.${b64(claims())}.AAAA`,
    code: 'ERR_JWTSVID_INVALID',
    message: PARSE,
  },
  {
    name: 'HS256 signed with the EC public key bytes as secret',
    token: () => sign(claims(), { alg: 'HS256' }, new TextEncoder().encode(spkiPem)),
    code: 'ERR_JWTSVID_INVALID',
    message: PARSE,
  },
  {
    name: 'HS256 signed with the RSA public key bytes as secret',
    token: () => sign(claims(), { alg: 'HS256', kid: 'rsa' }, new TextEncoder().encode(rsaSpkiPem)),
    code: 'ERR_JWTSVID_INVALID',
    message: PARSE,
  },
  { name: 'EdDSA', token: () => sign(claims(), { alg: 'EdDSA', kid: 'ed' }, ed.privateKey), code: 'ERR_JWTSVID_INVALID', message: PARSE },
  {
    name: 'lowercase alg',
    token: async () => {
      const t = await sign(claims());
      const [, p, s] = t.split('.');
      return `${b64({ alg: 'es256', kid: 'ec' })}.${p}.${s}`;
    },
    code: 'ERR_JWTSVID_INVALID',
    message: PARSE,
  },
  {
    name: 'JWS JSON serialization',
    token: async () => JSON.stringify({ payload: b64(claims()), protected: b64({ alg: 'ES256' }), signature: 'AAAA' }),
    code: 'ERR_JWTSVID_INVALID',
    message: PARSE,
  },
  {
    name: 'JWE-shaped five-part token',
    token: async () => `${b64({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.AAAA.AAAA.AAAA.AAAA`,
    code: 'ERR_JWTSVID_INVALID',
    message: PARSE,
  },
  {
    name: 'crit header (validly signed)',
    token: async () => {
      const input = `${b64({ alg: 'ES256', kid: 'ec', crit: ['x-ext'], 'x-ext': 1 })}.${b64(claims())}`;
      const sig = nodeSign('sha256', Buffer.from(input), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
      return `${input}.${sig}`;
    },
    code: 'ERR_JWTSVID_INVALID',
    message: PARSE,
  },
  { name: 'header not JSON', token: async () => `${b64('not json')}.${b64(claims())}.AAAA`, code: 'ERR_JWTSVID_INVALID', message: PARSE },
  {
    name: 'padded base64url',
    token: async () => {
      const [h, p, s] = (await sign(claims())).split('.');
      return `${h}=.${p}.${s}`;
    },
    code: 'ERR_JWTSVID_INVALID',
    message: PARSE,
  },
  {
    name: 'typ lowercase jwt',
    token: () => sign(claims(), { typ: 'jwt' }),
    code: 'ERR_JWTSVID_INVALID',
    message: 'jwtsvid: token header type not equal to either JWT or JOSE',
  },
  {
    name: 'typ at+jwt',
    token: () => sign(claims(), { typ: 'at+jwt' }),
    code: 'ERR_JWTSVID_INVALID',
    message: 'jwtsvid: token header type not equal to either JWT or JOSE',
  },
  {
    name: 'typ not a string',
    token: () => sign(claims(), { typ: 1 }),
    code: 'ERR_JWTSVID_INVALID',
    message: 'jwtsvid: token header type not equal to either JWT or JOSE',
  },
  {
    name: 'aud not a string list',
    token: () => sign(claims({ aud: [1] })),
    code: 'ERR_JWTSVID_INVALID',
    message: 'jwtsvid: unable to get claims from token: "aud" must be a string or an array of strings',
  },
  {
    name: 'exp not a number',
    token: () => sign(claims({ exp: 'soon' })),
    code: 'ERR_JWTSVID_INVALID',
    message: 'jwtsvid: unable to get claims from token: "exp" must be a number',
  },
  { name: 'missing sub', token: () => sign(claims({ sub: undefined })), code: 'ERR_JWTSVID_INVALID', message: 'jwtsvid: token missing subject claim' },
  { name: 'missing exp', token: () => sign(claims({ exp: undefined })), code: 'ERR_JWTSVID_INVALID', message: 'jwtsvid: token missing exp claim' },
  {
    name: 'sub not a SPIFFE ID',
    token: () => sign(claims({ sub: 'https://example.org/w' })),
    code: 'ERR_JWTSVID_INVALID',
    message: 'jwtsvid: token has an invalid subject claim: spiffeid: scheme is missing or invalid',
  },
  { name: 'empty kid', token: () => sign(claims(), { kid: '' }), code: 'ERR_JWTSVID_INVALID', message: 'jwtsvid: token header missing key id' },
  { name: 'kid not a string', token: () => sign(claims(), { kid: 7 }), code: 'ERR_JWTSVID_INVALID', message: 'jwtsvid: token header missing key id' },
  {
    name: 'subject trust domain without bundle',
    token: () => sign(claims({ sub: 'spiffe://nowhere.org/w' })),
    code: 'ERR_JWTSVID_UNTRUSTED',
    message: 'jwtsvid: no bundle found for trust domain "nowhere.org"',
  },
  {
    name: 'wrong kid',
    token: () => sign(claims(), { kid: 'nope' }),
    code: 'ERR_JWTSVID_UNTRUSTED',
    message: 'jwtsvid: no JWT authority "nope" found for trust domain "example.org"',
  },
  {
    name: 'foreign TD subject signed with our key (kid only in our bundle)',
    token: () => sign(claims({ sub: 'spiffe://other.org/w' })),
    code: 'ERR_JWTSVID_UNTRUSTED',
    message: 'jwtsvid: no JWT authority "ec" found for trust domain "other.org"',
  },
  {
    name: 'our subject signed by the foreign TD key',
    token: () => sign(claims(), { kid: 'other' }, otherKey.privateKey),
    code: 'ERR_JWTSVID_UNTRUSTED',
    message: 'jwtsvid: no JWT authority "other" found for trust domain "example.org"',
  },
  {
    name: 'RS256 token against an EC key (key confusion)',
    token: () => sign(claims(), { alg: 'RS256', kid: 'ec' }, rsa.privateKey),
    code: 'ERR_JWTSVID_UNTRUSTED',
    message: CRYPTO,
  },
  { name: 'ES256 token against an RSA key', token: () => sign(claims(), { alg: 'ES256', kid: 'rsa' }), code: 'ERR_JWTSVID_UNTRUSTED', message: CRYPTO },
  {
    name: 'ES384 token against a P-256 key',
    token: () => sign(claims(), { alg: 'ES384', kid: 'ec' }, ec384.privateKey),
    code: 'ERR_JWTSVID_UNTRUSTED',
    message: CRYPTO,
  },
  {
    name: 'ES256 token against an Ed25519 authority',
    token: () => sign(claims(), { alg: 'ES256', kid: 'ed' }),
    code: 'ERR_JWTSVID_UNTRUSTED',
    message: CRYPTO,
  },
  { name: 'signed by another key with our kid', token: () => sign(claims(), {}, otherKey.privateKey), code: 'ERR_JWTSVID_UNTRUSTED', message: CRYPTO },
  {
    name: 'tampered payload',
    token: async () => {
      const [h, , s] = (await sign(claims())).split('.');
      return `${h}.${b64(claims({ sub: 'spiffe://example.org/admin' }))}.${s}`;
    },
    code: 'ERR_JWTSVID_UNTRUSTED',
    message: CRYPTO,
  },
  {
    name: 'missing aud',
    token: () => sign(claims({ aud: undefined })),
    code: 'ERR_JWTSVID_AUDIENCE',
    message: 'jwtsvid: expected audience in ["spiffe://example.org/api"] (audience=[])',
  },
  {
    name: 'audience mismatch',
    token: () => sign(claims({ aud: ['a', 'b'] })),
    code: 'ERR_JWTSVID_AUDIENCE',
    message: 'jwtsvid: expected audience in ["spiffe://example.org/api"] (audience=["a" "b"])',
  },
  {
    name: 'empty expected audience',
    token: () => sign(claims()),
    audience: [],
    code: 'ERR_JWTSVID_AUDIENCE',
    message: 'jwtsvid: expected audience must be a non-empty list of non-empty strings',
  },
  {
    name: 'expired beyond default leeway (fake now)',
    token: () => sign(claims({ exp: now - 31 })),
    code: 'ERR_JWTSVID_EXPIRED',
    message: 'jwtsvid: token has expired',
  },
  {
    name: 'expired beyond custom leeway',
    token: () => sign(claims({ exp: now - 5 })),
    leewaySeconds: 0,
    code: 'ERR_JWTSVID_EXPIRED',
    message: 'jwtsvid: token has expired',
  },
  {
    name: 'expired long ago',
    token: () => sign(claims()),
    now: new Date(NOW.getTime() + 3_600_000),
    code: 'ERR_JWTSVID_EXPIRED',
    message: 'jwtsvid: token has expired',
  },
  { name: 'not valid yet (nbf)', token: () => sign(claims({ nbf: now + 31 })), code: 'ERR_JWTSVID_INVALID', message: 'jwtsvid: token not valid yet (nbf)' },
  {
    name: 'issued in the future (iat)',
    token: () => sign(claims({ iat: now + 31 })),
    code: 'ERR_JWTSVID_INVALID',
    message: 'jwtsvid: token issued in the future (iat)',
  },
];

for (const c of cases) {
  test(`parseAndValidateJwtSvid rejects: ${c.name}`, async () => {
    const token = await c.token();
    const opts = { now: c.now ?? NOW, ...(c.leewaySeconds === undefined ? {} : { leewaySeconds: c.leewaySeconds }) };
    await assert.rejects(parseAndValidateJwtSvid(token, set, c.audience ?? AUD, opts), (e: unknown) => {
      assert.ok(isSpiffeError(e), `not a SpiffeError: ${String(e)}`);
      assert.equal(e.code, c.code, e.message);
      assert.equal(e.message, c.message);
      return true;
    });
  });
}

test('exp/nbf/iat within the default 30 s leeway are accepted', async () => {
  const t = await sign(claims({ exp: now - 29, nbf: now + 29, iat: now + 29 }));
  await parseAndValidateJwtSvid(t, set, AUD, { now: NOW });
});

test('parseInsecureJwtSvid skips the signature but keeps structure, audience and time checks', async () => {
  const [h, p] = (await sign(claims())).split('.');
  const forged = `${h}.${p}.AAAA`;
  assert.equal(parseInsecureJwtSvid(forged, AUD, { now: NOW }).id.toString(), 'spiffe://example.org/workload');
  assert.equal(parseInsecureJwtSvid(await sign(claims(), { kid: undefined }), AUD, { now: NOW }).id.path, '/workload');
  assert.throws(
    () => parseInsecureJwtSvid(forged, ['other'], { now: NOW }),
    (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_AUDIENCE'),
  );
  assert.throws(
    () => parseInsecureJwtSvid(forged, AUD, { now: new Date(NOW.getTime() + 3_600_000) }),
    (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_EXPIRED'),
  );
  assert.throws(
    () => parseInsecureJwtSvid(`${b64({ alg: 'none' })}.${p}.`, AUD, { now: NOW }),
    (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_INVALID'),
  );
  assert.throws(
    () => parseInsecureJwtSvid(forged, [], { now: NOW }),
    (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_AUDIENCE'),
  );
});

test('an invalid validation time is rejected instead of skipping exp checks', async () => {
  const t = await sign(claims({ exp: now - 3600 }));
  await assert.rejects(
    parseAndValidateJwtSvid(t, set, AUD, { now: new Date(NaN) }),
    (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_INVALID') && e.message === 'jwtsvid: invalid validation time',
  );
  assert.throws(
    () => parseInsecureJwtSvid(t, AUD, { now: new Date(NaN) }),
    (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_INVALID'),
  );
  await assert.rejects(parseAndValidateJwtSvid(t, set, AUD, { now: NOW, leewaySeconds: -1 }), (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_INVALID'));
});

test('RS256 tokens from an RSA key under 2048 bits are not trusted', async () => {
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const b = JwtBundle.fromAuthorities(td, new Map([['weak', jwk(weak.publicKey)]]));
  const t = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims())))
    .setProtectedHeader({ alg: 'RS256', kid: 'weak' })
    .sign(weak.privateKey)
    .catch(() => undefined);
  // jose refuses to sign with it too; build the token by hand in that case
  const token =
    t ??
    (() => {
      const input = `${b64({ alg: 'RS256', kid: 'weak' })}.${b64(claims())}`;
      return `${input}.${nodeSign('sha256', Buffer.from(input), weak.privateKey).toString('base64url')}`;
    })();
  await assert.rejects(parseAndValidateJwtSvid(token, b, AUD, { now: NOW }), (e: unknown) => isSpiffeError(e, 'ERR_JWTSVID_UNTRUSTED') && e.message === CRYPTO);
});

const noKid = { kid: undefined };
const rejectsWith = async (t: string, source: JwtBundleSet | JwtBundle, code: SpiffeErrorCode, message: string): Promise<void> =>
  assert.rejects(parseAndValidateJwtSvid(t, source, AUD, { now: NOW }), (e: unknown) => isSpiffeError(e, code) && e.message === message);

test("JWT-SVID §2.2: without kid, the subject trust domain's authorities whose type fits alg are tried among several keys", async () => {
  // The bundle holds P-256, P-384, RSA and Ed25519 keys: each token finds the one that signed it.
  for (const t of [
    await sign(claims(), noKid),
    await sign(claims(), { ...noKid, alg: 'ES384' }, ec384.privateKey),
    await sign(claims(), { ...noKid, alg: 'RS256' }, rsa.privateKey),
    await sign(claims(), { ...noKid, alg: 'PS384' }, rsa.privateKey),
  ]) {
    assert.equal((await parseAndValidateJwtSvid(t, set, AUD, { now: NOW })).id.toString(), 'spiffe://example.org/workload');
  }
  // Two keys of the fitting type: the second one verifies.
  const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const two = JwtBundle.fromAuthorities(
    td,
    new Map([
      ['a', jwk(ec.publicKey)],
      ['b', jwk(ec2.publicKey)],
    ]),
  );
  assert.equal((await parseAndValidateJwtSvid(await sign(claims(), noKid, ec2.privateKey), two, AUD, { now: NOW })).id.path, '/workload');
  // Every other rule still applies.
  await rejectsWith(
    await sign(claims({ aud: ['other'] }), noKid),
    set,
    'ERR_JWTSVID_AUDIENCE',
    'jwtsvid: expected audience in ["spiffe://example.org/api"] (audience=["other"])',
  );
  await rejectsWith(await sign(claims({ exp: now - 3600 }), noKid), set, 'ERR_JWTSVID_EXPIRED', 'jwtsvid: token has expired');
  const [h, , sig] = (await sign(claims(), noKid)).split('.');
  await rejectsWith(`${h}.${b64(claims({ sub: 'spiffe://example.org/admin' }))}.${sig}`, set, 'ERR_JWTSVID_UNTRUSTED', CRYPTO);
});

test('JWT-SVID §2.2: without kid, a key whose type does not fit alg is not tried, nor a key of another trust domain', async () => {
  // Only keys of other types (RSA, P-384, Ed25519) for an ES256 token: no candidate at all,
  // so nothing was tried (trying them would end in the signature error instead).
  const wrongTypes = JwtBundle.fromAuthorities(
    td,
    new Map([
      ['rsa', jwk(rsa.publicKey)],
      ['ec384', jwk(ec384.publicKey)],
      ['ed', jwk(ed.publicKey)],
    ]),
  );
  const noFit = 'jwtsvid: no JWT authority for alg "ES256" found for trust domain "example.org"';
  await rejectsWith(await sign(claims(), noKid), wrongTypes, 'ERR_JWTSVID_UNTRUSTED', noFit);
  // An RS256 token beside EC keys only: likewise.
  const ecOnly = JwtBundle.fromAuthorities(td, new Map([['ec', jwk(ec.publicKey)]]));
  await rejectsWith(await sign(claims(), { ...noKid, alg: 'RS256' }, rsa.privateKey), ecOnly, 'ERR_JWTSVID_UNTRUSTED', noFit.replace('ES256', 'RS256'));
  // A key of another trust domain never counts, even though it is in the set and fits alg.
  await rejectsWith(await sign(claims(), noKid, otherKey.privateKey), set, 'ERR_JWTSVID_UNTRUSTED', CRYPTO);
  await rejectsWith(await sign(claims({ sub: 'spiffe://other.org/w' }), noKid), set, 'ERR_JWTSVID_UNTRUSTED', CRYPTO);
});

test('JWT-SVID §2.2: without kid and with no authority fitting alg, the token is refused', async () => {
  // No P-521 key in the bundle.
  const es512 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  await rejectsWith(
    await sign(claims(), { ...noKid, alg: 'ES512' }, es512.privateKey),
    set,
    'ERR_JWTSVID_UNTRUSTED',
    'jwtsvid: no JWT authority for alg "ES512" found for trust domain "example.org"',
  );
  // An empty bundle for the subject trust domain.
  await rejectsWith(
    await sign(claims(), noKid),
    new JwtBundle(td),
    'ERR_JWTSVID_UNTRUSTED',
    'jwtsvid: no JWT authority for alg "ES256" found for trust domain "example.org"',
  );
});

test('a token parsed before: audience, time and signature are still checked on every call, and each call gets its own claims', async () => {
  const token = await sign(claims({ nested: { list: [1, 2] } }));
  const a = parseInsecureJwtSvid(token, AUD, { now: NOW });
  // What the earlier call handed out cannot change what a later one returns.
  (a.audience as string[]).push('spiffe://example.org/injected');
  ((a.claims['nested'] as { list: number[] }).list as number[]).push(3);
  const b = parseInsecureJwtSvid(token, AUD, { now: NOW });
  assert.deepEqual(b.audience, AUD);
  assert.deepEqual(b.claims['nested'], { list: [1, 2] });
  const rejects = (code: SpiffeErrorCode) => (e: unknown) => isSpiffeError(e, code);
  assert.throws(() => parseInsecureJwtSvid(token, ['spiffe://example.org/other'], { now: NOW }), rejects('ERR_JWTSVID_AUDIENCE'));
  assert.throws(() => parseInsecureJwtSvid(token, AUD, { now: new Date(NOW.getTime() + 3_600_000) }), rejects('ERR_JWTSVID_EXPIRED'));
  assert.throws(() => parseInsecureJwtSvid(token, AUD, { now: new Date(NOW.getTime() - 3_600_000) }), rejects('ERR_JWTSVID_INVALID'));
  assert.equal((await parseAndValidateJwtSvid(token, set, AUD, { now: NOW })).id.toString(), 'spiffe://example.org/workload');
  await assert.rejects(parseAndValidateJwtSvid(token, set, AUD, { now: new Date(NOW.getTime() + 3_600_000) }), rejects('ERR_JWTSVID_EXPIRED'));
  // The same header and claims with another signature (the key of another trust domain): refused.
  const forged = `${token.slice(0, token.lastIndexOf('.'))}.${(await sign(claims({ nested: { list: [1, 2] } }), {}, otherKey.privateKey)).split('.')[2]}`;
  await assert.rejects(parseAndValidateJwtSvid(forged, set, AUD, { now: NOW }), rejects('ERR_JWTSVID_UNTRUSTED'));
  // A bundle without the token's key: refused although the token parsed before.
  const without = new JwtBundleSet([JwtBundle.fromAuthorities(td, new Map([['rsa', jwk(rsa.publicKey)]]))]);
  await assert.rejects(parseAndValidateJwtSvid(token, without, AUD, { now: NOW }), rejects('ERR_JWTSVID_UNTRUSTED'));
});
