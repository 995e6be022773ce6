// JWT-SVID validation across implementations. Tokens are hand-made (lib/jws.ts) or minted by
// go-jose (spiffecheck gen-bundle), and judged by ztwim parseAndValidateJwtSvid, go-spiffe
// jwtsvid.ParseAndValidate, PyJWT, py-spiffe JwtSvid.parse_and_validate and jose jwtVerify.
// Every verdict is pinned; where a generic JWT library cannot know a SPIFFE rule (sub must be
// a SPIFFE ID, key must belong to the subject's trust domain, typ), its verdict is pinned too,
// so a behaviour change on either side shows up.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { jwks, makeKey, makeToken, type TestKey } from './lib/jws.ts';
import { VALIDATORS, judge, type Verdicts } from './lib/jwt-judge.ts';
import { JwtBundle, TrustDomain, parseAndValidateJwtSvid } from './lib/sdk.ts';
import { check, checkBatch } from './lib/spiffecheck.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const TD = 'example.org';
const SUB = `spiffe://${TD}/workload`;
const AUD = 'ztwim-test';
interface Case {
  name: string;
  token: string;
  jwks: string;
  /** Expected verdict for every validator, with per-validator overrides. */
  accept: boolean;
  except?: Partial<Verdicts>;
}

/**
 * Error texts are compared after removing the library prefixes our SDK leaves out: go-jose's
 * "go-jose/go-jose: " and "go-jose/go-jose/jwt: validation failed, " (we say "jwtsvid: "), and
 * the nested "spiffeid: " our SpiffeId errors carry.
 */
function normalizeError(msg: string | undefined): string {
  return (msg ?? '')
    .replace(/^go-jose\/go-jose\/jwt: validation failed, /, 'jwtsvid: ')
    .replace('go-jose/go-jose: ', '')
    .replace(/: spiffeid: /, ': ');
}

/**
 * Rejected by both, at a different step: an empty signature part is a parse error for us, while
 * go-jose parses it and fails the signature check.
 */
const ALLOWED_TEXT_DIFFS = new Set(['signature-stripped']);

function expected(c: Case): Verdicts {
  const v = Object.fromEntries(VALIDATORS.map((n) => [n, c.accept])) as Verdicts;
  return { ...v, ...c.except };
}

function buildCases(keys: { es256: TestKey; es384: TestKey; es512: TestKey; rs256: TestKey; ps256: TestKey }): Case[] {
  const now = Math.floor(Date.now() / 1000);
  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ sub: SUB, aud: [AUD], iat: now, exp: now + 300, ...extra });
  const all = jwks(keys.es256, keys.es384, keys.es512, keys.rs256, keys.ps256);
  const good = makeToken({ key: keys.es256, claims: claims() });
  const [h, p, s] = good.split('.') as [string, string, string];
  const otherPayload = Buffer.from(JSON.stringify(claims({ sub: `spiffe://${TD}/admin` }))).toString('base64url');
  const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  const rsaPem = keys.rs256.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  const ecPem = keys.es256.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  // Generic JWT libraries do not know SPIFFE rules: they accept these (pinned).
  const notSpiffeAware = { pyjwt: true, jose: true };
  return [
    { name: 'es256', token: good, jwks: all, accept: true },
    { name: 'es384', token: makeToken({ key: keys.es384, claims: claims() }), jwks: all, accept: true },
    { name: 'es512', token: makeToken({ key: keys.es512, claims: claims() }), jwks: all, accept: true },
    { name: 'rs256', token: makeToken({ key: keys.rs256, claims: claims() }), jwks: all, accept: true },
    { name: 'ps256', token: makeToken({ key: keys.ps256, claims: claims() }), jwks: all, accept: true },
    { name: 'aud-string', token: makeToken({ key: keys.es256, claims: claims({ aud: AUD }) }), jwks: all, accept: true },
    { name: 'aud-any-of', token: makeToken({ key: keys.es256, claims: claims({ aud: ['other', AUD] }) }), jwks: all, accept: true },
    {
      name: 'typ-jose',
      token: makeToken({ key: keys.es256, header: { alg: 'ES256', kid: keys.es256.kid, typ: 'JOSE' }, claims: claims() }),
      jwks: all,
      accept: true,
    },
    { name: 'no-typ', token: makeToken({ key: keys.es256, header: { alg: 'ES256', kid: keys.es256.kid }, claims: claims() }), jwks: all, accept: true },
    { name: 'tampered-payload', token: `${h}.${otherPayload}.${s}`, jwks: all, accept: false },
    { name: 'tampered-signature', token: `${h}.${p}.${flipped}`, jwks: all, accept: false },
    { name: 'signature-stripped', token: `${h}.${p}.`, jwks: all, accept: false },
    { name: 'alg-none', token: makeToken({ header: { alg: 'none', kid: keys.es256.kid, typ: 'JWT' }, claims: claims() }), jwks: all, accept: false },
    {
      name: 'hs256-rsa-public-key',
      token: makeToken({ header: { alg: 'HS256', kid: keys.rs256.kid, typ: 'JWT' }, claims: claims(), signAlg: 'HS256', signKey: rsaPem }),
      jwks: all,
      accept: false,
    },
    {
      name: 'hs256-ec-public-key',
      token: makeToken({ header: { alg: 'HS256', kid: keys.es256.kid, typ: 'JWT' }, claims: claims(), signAlg: 'HS256', signKey: ecPem }),
      jwks: all,
      accept: false,
    },
    { name: 'wrong-aud', token: makeToken({ key: keys.es256, claims: claims({ aud: ['someone-else'] }) }), jwks: all, accept: false },
    { name: 'expired', token: makeToken({ key: keys.es256, claims: claims({ iat: now - 7200, exp: now - 3600 }) }), jwks: all, accept: false },
    { name: 'nbf-future', token: makeToken({ key: keys.es256, claims: claims({ nbf: now + 3600, exp: now + 7200 }) }), jwks: all, accept: false },
    { name: 'missing-exp', token: makeToken({ key: keys.es256, claims: { sub: SUB, aud: [AUD], iat: now } }), jwks: all, accept: false },
    { name: 'missing-sub', token: makeToken({ key: keys.es256, claims: { aud: [AUD], iat: now, exp: now + 300 } }), jwks: all, accept: false },
    { name: 'missing-aud', token: makeToken({ key: keys.es256, claims: { sub: SUB, iat: now, exp: now + 300 } }), jwks: all, accept: false },
    { name: 'sub-not-spiffe-id', token: makeToken({ key: keys.es256, claims: claims({ sub: 'workload' }) }), jwks: all, accept: false, except: notSpiffeAware },
    {
      name: 'sub-other-trust-domain',
      token: makeToken({ key: keys.es256, claims: claims({ sub: 'spiffe://other.test/w' }) }),
      jwks: all,
      accept: false,
      except: notSpiffeAware,
    },
    {
      name: 'typ-wrong',
      token: makeToken({ key: keys.es256, header: { alg: 'ES256', kid: keys.es256.kid, typ: 'at+jwt' }, claims: claims() }),
      jwks: all,
      accept: false,
      except: notSpiffeAware,
    },
    {
      name: 'unknown-kid',
      token: makeToken({ key: keys.es256, header: { alg: 'ES256', kid: 'nope', typ: 'JWT' }, claims: claims() }),
      jwks: all,
      accept: false,
    },
    // JWT-SVID §2.2: kid is optional. go-spiffe requires it (so do py-spiffe and our PyJWT harness); ztwim tries
    // the subject trust domain's keys that fit alg, jose picks the only key that fits.
    {
      name: 'missing-kid',
      token: makeToken({ key: keys.es256, header: { alg: 'ES256', typ: 'JWT' }, claims: claims() }),
      jwks: jwks(keys.es256),
      accept: false,
      except: { jose: true, ztwim: true },
    },
    {
      name: 'alg-key-mismatch',
      token: makeToken({ key: keys.es256, header: { alg: 'ES256', kid: keys.rs256.kid, typ: 'JWT' }, claims: claims() }),
      jwks: all,
      accept: false,
    },
    {
      name: 'header-alg-swapped',
      token: makeToken({ key: keys.rs256, header: { alg: 'RS384', kid: keys.rs256.kid, typ: 'JWT' }, claims: claims(), signAlg: 'RS256' }),
      jwks: all,
      accept: false,
    },
    { name: 'malformed-two-parts', token: `${h}.${p}`, jwks: all, accept: false },
  ];
}

/** A fresh key of each signing algorithm the cases use. */
const makeKeys = () => ({
  es256: makeKey('ES256', 'kid-es256'),
  es384: makeKey('ES384', 'kid-es384'),
  es512: makeKey('ES512', 'kid-es512'),
  rs256: makeKey('RS256', 'kid-rs256'),
  ps256: makeKey('PS256', 'kid-ps256'),
});

describe('JWT-SVID validation: ztwim vs go-spiffe vs PyJWT vs py-spiffe vs jose', () => {
  let tmp: TmpDir;
  before(() => {
    tmp = makeTmpDir();
  });
  after(() => tmp.cleanup());

  it('hand-made tokens: every validator gives its pinned verdict', async () => {
    const keys = makeKeys();
    const cases = buildCases(keys);
    const got = await judge(tmp, cases, TD, AUD);
    const diffs: string[] = [];
    for (const c of cases) {
      const want = expected(c);
      const v = got[c.name]!;
      for (const n of VALIDATORS) {
        if (v[n] !== want[n]) diffs.push(`${c.name}: ${n} accepted=${v[n]} want ${want[n]} (${v.errors[n] ?? 'no error'})`);
      }
    }
    assert.deepEqual(diffs, []);
  });

  it('ztwim and go-spiffe reject for the same reason (same error text, modulo library prefixes)', async () => {
    const keys = makeKeys();
    // Cases both reject (missing-kid: only go-spiffe does, JWT-SVID §2.2).
    const cases = buildCases(keys).filter((c) => !expected(c).ztwim && !expected(c)['go-spiffe']);
    const got = await judge(tmp, cases, TD, AUD);
    const diffs: string[] = [];
    for (const c of cases) {
      const e = got[c.name]!.errors;
      if (ALLOWED_TEXT_DIFFS.has(c.name)) continue;
      if (normalizeError(e.ztwim) !== normalizeError(e['go-spiffe'])) diffs.push(`${c.name}: ztwim="${e.ztwim}" go="${e['go-spiffe']}"`);
    }
    assert.deepEqual(diffs, []);
  });

  it('validation time: go-spiffe (replayed at a given time) and ours agree; leeways 60 s vs 30 s', async () => {
    const key = makeKey('ES256', 'kid-time');
    const now = Math.floor(Date.now() / 1000);
    const token = makeToken({ key, claims: { sub: SUB, aud: [AUD], iat: now, exp: now + 300 } });
    const keys = jwks(key);
    const tokFile = tmp.write('time.tok', token);
    const jwksFile = tmp.write('time.jwks', keys);
    const bundle = JwtBundle.parse(TrustDomain.parse(TD), keys, { plainJwks: true });
    const at = [now, now + 300 + 20, now + 300 + 45, now + 300 + 90, now - 45, now - 90];
    const go = checkBatch(at.map((t) => ({ cmd: 'jwtsvid', args: [tokFile, TD, jwksFile, AUD, String(t)] })));
    const ours = await Promise.all(
      at.map((t) =>
        parseAndValidateJwtSvid(token, bundle, [AUD], { now: new Date(t * 1000) }).then(
          () => true,
          () => false,
        ),
      ),
    );
    // exp+20s: both accept (within both leeways); exp+45s: go-spiffe's 60 s leeway accepts, our
    // 30 s leeway rejects (stricter, allowed); exp+90s: both reject. iat 45 s / 90 s in the future:
    // same split.
    assert.deepEqual(
      go.map((r) => r.ok),
      [true, true, true, false, true, false],
      JSON.stringify(go),
    );
    assert.deepEqual(ours, [true, true, false, false, false, false]);
    assert.equal(go[3]!.error, 'jwtsvid: token has expired');
    assert.equal(go[0]!['timeMode'], 'replayed');
  });

  it('tokens and JWT bundle minted by go-jose/go-spiffe validate everywhere', async () => {
    const gen = check('gen-bundle', TD, tmp.file('go'));
    assert.ok(gen.ok, gen.error);
    const tokens = gen['tokens'] as Record<string, string>;
    const goJwks = readFileSync(gen['jwtBundle'] as string, 'utf8');
    const cases = Object.entries(tokens).map(([alg, file]) => ({ name: `go-${alg}`, token: readFileSync(file, 'utf8').trim(), jwks: goJwks }));
    assert.equal(cases.length, 3);
    const got = await judge(tmp, cases, TD, AUD);
    for (const c of cases) {
      for (const n of VALIDATORS) assert.equal(got[c.name]![n], true, `${c.name}: ${n}: ${got[c.name]!.errors[n]}`);
    }
    // ...and with a different audience nobody accepts them.
    const wrong = await judge(tmp, cases, TD, 'not-the-audience');
    for (const c of cases) {
      for (const n of VALIDATORS) assert.equal(wrong[c.name]![n], false, `${c.name}: ${n} accepted a wrong audience`);
    }
  });
});
