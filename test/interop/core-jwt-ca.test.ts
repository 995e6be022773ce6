// JWT-SVIDs minted by our JwtSigner (ES256, ES384, RS256) validate with ztwim, go-spiffe,
// PyJWT, py-spiffe and jose against the JWKS our JwtBundle marshals (and go-spiffe also
// against our SPIFFE bundle); tampered, re-signed-with-HS256, alg-none, wrong-audience and
// expired variants are rejected by all of them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { JwtBundle, SpiffeBundle, SpiffeId, TrustDomain } from './lib/sdk.ts';
import { JwtSigner } from './lib/server.ts';
import { b64url, signParts } from './lib/jws.ts';
import { VALIDATORS, judge } from './lib/jwt-judge.ts';
import { genKey, type KeyKind, type Pair } from './lib/keys.ts';
import { check } from './lib/spiffecheck.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const TD = TrustDomain.parse('example.org');
const AUD = 'ztwim-test';
const ID = SpiffeId.fromSegments(TD, 'ns', 'default', 'sa', 'web');
const HOUR = 3600_000;

interface Signer {
  kind: KeyKind;
  kid: string;
  key: Pair;
  signer: JwtSigner;
  publicPem: string;
}

function makeSigner(kind: KeyKind, kid: string, clock: FakeClock, key: Pair = genKey(kind)): Signer {
  const signer = new JwtSigner({
    trustDomain: TD,
    kid,
    keyType: kind,
    privateKey: key.privateKey,
    publicKey: key.publicKey,
    notAfter: new Date(clock.nowMs() + 24 * HOUR),
    clock,
    jwtSvidTtlMs: 5 * 60_000,
  });
  return { kind, kid, key, signer, publicPem: key.publicKey.export({ format: 'pem', type: 'spki' }) as string };
}

describe('JWT-SVIDs minted by our CA interoperate', () => {
  let tmp: TmpDir;
  const clock = new FakeClock(Date.now());
  let signers: Signer[];
  let jwksJson: string;
  let spiffeBundleJson: string;

  before(() => {
    tmp = makeTmpDir();
    signers = [
      makeSigner('ec-p256', 'kid-ec-p256-aaaaaaaaaaaaaaaaaaaaaa', clock),
      makeSigner('ec-p384', 'kid-ec-p384-bbbbbbbbbbbbbbbbbbbbbb', clock),
      makeSigner('rsa-2048', 'kid-rsa-2048-cccccccccccccccccccccc', clock),
    ];
    const jb = new JwtBundle(TD);
    const sb = new SpiffeBundle(TD);
    for (const s of signers) {
      jb.addAuthority(s.signer.kid, s.signer.authority.publicKey);
      sb.addJwtAuthority(s.signer.kid, s.signer.authority.publicKey);
    }
    sb.setSequenceNumber(1n);
    jwksJson = jb.marshal();
    spiffeBundleJson = sb.marshal();
  });
  after(() => tmp.cleanup());

  it('signers use SPIRE algorithms', () => {
    assert.deepEqual(
      signers.map((s) => s.signer.alg),
      ['ES256', 'ES384', 'RS256'],
    );
  });

  it('minted tokens validate everywhere, with the minted claims', async () => {
    const cases = [];
    for (const s of signers) {
      const r = await s.signer.signJwtSvid({ spiffeId: ID, audience: [AUD, 'another'], withJti: true });
      const [h, p] = r.token.split('.') as [string, string];
      const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      assert.deepEqual(header, { alg: s.signer.alg, kid: s.signer.kid, typ: 'JWT' });
      assert.equal(claims['sub'], ID.toString());
      assert.deepEqual(claims['aud'], [AUD, 'another']);
      assert.equal(typeof claims['jti'], 'string');
      cases.push({ name: `minted-${s.kind}`, token: r.token, jwks: jwksJson });
    }
    const got = await judge(tmp, cases, TD.name, AUD);
    for (const c of cases) {
      for (const n of VALIDATORS) assert.equal(got[c.name]![n], true, `${c.name}: ${n}: ${got[c.name]!.errors[n]}`);
    }
    // go-spiffe also validates them against our SPIFFE bundle form.
    for (const c of cases) {
      const r = check('jwtsvid', tmp.write(`${c.name}.tok`, c.token), TD.name, tmp.write('spiffe-bundle.json', spiffeBundleJson), AUD);
      assert.ok(r.ok, `${c.name}: ${r.error}`);
      assert.equal(r['id'], ID.toString());
    }
  });

  it('tampered / downgraded / mis-addressed / expired variants are rejected by everyone', async () => {
    const cases: { name: string; token: string; jwks: string }[] = [];
    for (const s of signers) {
      const { token } = await s.signer.signJwtSvid({ spiffeId: ID, audience: [AUD] });
      const [h, p, sig] = token.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      const evilPayload = b64url(JSON.stringify({ ...claims, sub: SpiffeId.fromSegments(TD, 'admin').toString() }));
      const noneHeader = b64url(JSON.stringify({ alg: 'none', kid: s.signer.kid, typ: 'JWT' }));
      const hsHeader = b64url(JSON.stringify({ alg: 'HS256', kid: s.signer.kid, typ: 'JWT' }));
      cases.push(
        { name: `${s.kind}-tampered-payload`, token: `${h}.${evilPayload}.${sig}`, jwks: jwksJson },
        { name: `${s.kind}-tampered-signature`, token: `${h}.${p}.${sig.slice(0, -4)}${sig.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`, jwks: jwksJson },
        { name: `${s.kind}-alg-none`, token: `${noneHeader}.${p}.`, jwks: jwksJson },
        { name: `${s.kind}-hs256-with-public-key`, token: `${hsHeader}.${p}.${signParts(hsHeader, p, 'HS256', s.publicPem)}`, jwks: jwksJson },
      );
      const wrongAud = await s.signer.signJwtSvid({ spiffeId: ID, audience: ['someone-else'] });
      cases.push({ name: `${s.kind}-wrong-aud`, token: wrongAud.token, jwks: jwksJson });
      // Minted 2h ago with the default 5 min TTL: expired beyond every leeway.
      const past = new FakeClock(Date.now() - 2 * HOUR);
      const old = makeSigner(s.kind, s.kid, past, s.key).signer;
      cases.push({ name: `${s.kind}-expired`, token: (await old.signJwtSvid({ spiffeId: ID, audience: [AUD] })).token, jwks: jwksJson });
    }
    const got = await judge(tmp, cases, TD.name, AUD);
    const accepted: string[] = [];
    for (const c of cases) {
      for (const n of VALIDATORS) if (got[c.name]![n]) accepted.push(`${c.name}: ${n}`);
    }
    assert.deepEqual(accepted, []);
    // The expired ones fail for expiry in ours and go-spiffe (not for something else).
    for (const s of signers) {
      const e = got[`${s.kind}-expired`]!.errors;
      assert.equal(e.ztwim, 'jwtsvid: token has expired');
      assert.equal(e['go-spiffe'], 'jwtsvid: token has expired');
    }
  });
});
