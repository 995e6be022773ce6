import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import fc from 'fast-check';
import { JwtBundle, SpiffeBundle, SpiffeError, TrustDomain, X509Bundle, parseBundleMap, pemToDerList } from '../index.ts';
import { makePki } from '../testdata/fixtures.ts';
import { mutated, mutatedString } from '../testdata/mutate.ts';

const td = TrustDomain.parse('example.org');
const pki = await makePki('example.org');
const rootJwk = new X509Certificate(pki.root.der).publicKey.export({ format: 'jwk' }) as JsonWebKey;
const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JsonWebKey;
const VALID = JSON.stringify({
  keys: [
    { use: 'x509-svid', kty: 'EC', crv: 'P-256', x: rootJwk.x, y: rootJwk.y, x5c: [Buffer.from(pki.root.der).toString('base64')] },
    { use: 'jwt-svid', kty: 'EC', kid: 'k1', crv: 'P-256', x: jwtKey.x, y: jwtKey.y },
  ],
  spiffe_sequence: 7,
  spiffe_refresh_hint: 300,
});
const VALID_MAP = `{"trust_domains":{"example.org":${VALID},"other.org":{"keys":[]}}}`;

function onlySpiffeErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof SpiffeError)) throw new Error(`non-SpiffeError thrown: ${String(e)}`, { cause: e });
  }
}

// JSON values shaped like bundles, so generated inputs reach the per-key rules.
const jwkish = fc.record(
  {
    use: fc.constantFrom('x509-svid', 'jwt-svid', 'sig', '', 1),
    kty: fc.constantFrom('EC', 'RSA', 'OKP', 'oct', 'XYZ', null),
    kid: fc.oneof(fc.string({ maxLength: 4 }), fc.integer()),
    crv: fc.constantFrom('P-256', 'P-384', 'Ed25519', 'X'),
    x: fc.constantFrom(jwtKey.x, rootJwk.x, 'AA', '', '***'),
    y: fc.constantFrom(jwtKey.y, rootJwk.y, 'AA'),
    n: fc.constantFrom('AQAB', 'AA'),
    e: fc.constantFrom('AQAB'),
    d: fc.constant('AAAA'),
    x5c: fc.oneof(fc.constant([Buffer.from(pki.root.der).toString('base64')]), fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 }), fc.string()),
  },
  { requiredKeys: [] },
);
const bundleish = fc
  .record(
    {
      keys: fc.oneof(fc.array(jwkish, { maxLength: 4 }), fc.jsonValue()),
      spiffe_sequence: fc.oneof(fc.integer(), fc.bigInt({ min: -1n, max: 1n << 65n }).map(String), fc.double()),
      spiffe_refresh_hint: fc.oneof(fc.integer(), fc.double(), fc.string()),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o).replace(/"spiffe_sequence":"(-?\d+)"/, '"spiffe_sequence":$1'));

const inputs = fc.oneof(
  bundleish,
  fc.json({ depthSize: 'small' }),
  fc.string({ maxLength: 80 }),
  mutatedString(VALID),
  mutatedString(VALID_MAP),
  bundleish.map((b) => `{"trust_domains":{"example.org":${b},"a.org":${b}}}`),
);

test('fuzz: SpiffeBundle.parse (default and strict) returns a bundle or throws SpiffeError', () => {
  fc.assert(
    fc.property(inputs, fc.boolean(), (s, strict) => {
      onlySpiffeErrors(() => {
        const b = SpiffeBundle.parse(td, s, { strict });
        // anything we accept must survive a marshal/parse round trip unchanged
        assert.ok(SpiffeBundle.parse(td, b.marshal(), { strict: true }).equals(b));
      });
    }),
    { numRuns: 2500 },
  );
});

test('fuzz: JwtBundle.parse and parseBundleMap return values or throw SpiffeError', () => {
  fc.assert(
    fc.property(inputs, (s) => {
      onlySpiffeErrors(() => JwtBundle.parse(td, s));
      onlySpiffeErrors(() => JwtBundle.parse(td, new TextEncoder().encode(s)));
      onlySpiffeErrors(() => parseBundleMap(s));
    }),
    { numRuns: 2500 },
  );
});

test('fuzz: pemToDerList and X509Bundle.parse/parseRaw on mutated PEM and DER', () => {
  const pem = X509Bundle.fromAuthorities(td, [pki.root.der, pki.intermediate.der]).marshal();
  const raw = X509Bundle.fromAuthorities(td, [pki.root.der, pki.intermediate.der]).marshalRaw();
  fc.assert(
    fc.property(fc.oneof(mutatedString(pem), fc.string({ maxLength: 100 })), mutated(raw), (p, d) => {
      onlySpiffeErrors(() => pemToDerList(p));
      onlySpiffeErrors(() => X509Bundle.parse(td, p));
      onlySpiffeErrors(() => X509Bundle.parseRaw(td, d));
    }),
    { numRuns: 2000 },
  );
});
