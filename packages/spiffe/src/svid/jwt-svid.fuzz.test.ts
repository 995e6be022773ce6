import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import fc from 'fast-check';
import { CompactSign } from 'jose';
import { JwtBundle, SpiffeError, TrustDomain, parseAndValidateJwtSvid, parseInsecureJwtSvid } from '../index.ts';
import { mutatedString } from '../testdata/mutate.ts';

const td = TrustDomain.parse('example.org');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const bundle = JwtBundle.fromAuthorities(td, new Map([['k1', ec.publicKey.export({ format: 'jwk' }) as JsonWebKey]]));
const NOW = new Date('2026-01-01T00:00:00Z');
const now = NOW.getTime() / 1000;
const AUD = ['aud1'];
const payload = { sub: 'spiffe://example.org/w', aud: AUD, exp: now + 300, iat: now };
const TOKEN = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
  .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
  .sign(ec.privateKey);

const b64 = (s: string): string => Buffer.from(s).toString('base64url');
const headerish = fc.record(
  {
    alg: fc.constantFrom('ES256', 'RS256', 'none', 'HS256', 'EdDSA', 'PS512', 1),
    kid: fc.constantFrom('k1', 'k2', '', 7),
    typ: fc.constantFrom('JWT', 'JOSE', 'jwt', null),
    crit: fc.constant(['x']),
  },
  { requiredKeys: [] },
);
const claimsish = fc.record(
  {
    sub: fc.constantFrom('spiffe://example.org/w', 'spiffe://other.org/w', 'spiffe://example.org', 'bad', '', 3),
    aud: fc.oneof(fc.constant(AUD), fc.constant('aud1'), fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 2 })),
    exp: fc.oneof(fc.constant(now + 300), fc.integer(), fc.double(), fc.string()),
    nbf: fc.oneof(fc.integer(), fc.double()),
    iat: fc.oneof(fc.integer(), fc.string()),
  },
  { requiredKeys: [] },
);
const generated = fc
  .tuple(headerish, claimsish, fc.constantFrom('', 'AAAA', TOKEN.split('.')[2] as string))
  .map(([h, c, s]) => `${b64(JSON.stringify(h))}.${b64(JSON.stringify(c))}.${s}`);
const tokens = fc.oneof(mutatedString(TOKEN), generated, fc.string({ maxLength: 60 }), fc.constant(TOKEN));

test('fuzz: parseAndValidateJwtSvid never accepts a modified token and only throws SpiffeError', async () => {
  assert.equal((await parseAndValidateJwtSvid(TOKEN, bundle, AUD, { now: NOW })).id.toString(), 'spiffe://example.org/w');
  await fc.assert(
    fc.asyncProperty(tokens, async (t) => {
      try {
        await parseAndValidateJwtSvid(t, bundle, AUD, { now: NOW });
      } catch (e) {
        if (!(e instanceof SpiffeError)) throw new Error(`non-SpiffeError thrown: ${String(e)}`, { cause: e });
        return;
      }
      assert.equal(t, TOKEN, 'a token other than the signed one was accepted');
    }),
    { numRuns: 2500 },
  );
});

test('fuzz: parseInsecureJwtSvid returns an SVID or throws SpiffeError', () => {
  fc.assert(
    fc.property(tokens, (t) => {
      try {
        const svid = parseInsecureJwtSvid(t, AUD, { now: NOW });
        assert.ok(svid.audience.includes('aud1'));
      } catch (e) {
        if (!(e instanceof SpiffeError)) throw new Error(`non-SpiffeError thrown: ${String(e)}`, { cause: e });
      }
    }),
    { numRuns: 3000 },
  );
});
