import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toPublicKeySet, toPublishedJwk, signingAlgs, algForKey } from './jwk.ts';
import { makeKey } from './testing/keys.ts';

test('private members are stripped from EC and RSA keys', () => {
  for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    const k = makeKey(type);
    const r = toPublishedJwk({ ...k.privateJwk, k: 'secret', oth: [] });
    assert.ok('jwk' in r);
    for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) assert.ok(!(m in r.jwk), `${type} ${m}`);
  }
});

test('EC coordinates are left-padded to the full curve length', () => {
  const k = makeKey('ec-p256');
  const x = Buffer.from(k.publicJwk.x as string, 'base64url');
  // Simulate an encoder that dropped a leading zero octet.
  const shortX = Buffer.concat([Buffer.from([0]), x.subarray(1)])
    .subarray(1)
    .toString('base64url');
  const r = toPublishedJwk({ ...k.publicJwk, x: shortX });
  assert.ok('jwk' in r);
  const padded = Buffer.from(r.jwk.x as string, 'base64url');
  assert.equal(padded.length, 32);
  assert.equal(padded[0], 0);
  assert.deepEqual(padded.subarray(1), x.subarray(1));
  const tooLong = Buffer.concat([Buffer.from([1]), x]).toString('base64url');
  assert.deepEqual(toPublishedJwk({ ...k.publicJwk, x: tooLong }), { reason: 'bad coordinate length for P-256' });
});

test('alg derived from the key; unusable keys dropped with a reason', () => {
  const cases: Array<{ name: string; jwk: Record<string, unknown>; want: string | undefined; reason?: string }> = [
    { name: 'P-256', jwk: makeKey('ec-p256').publicJwk, want: 'ES256' },
    { name: 'P-384', jwk: makeKey('ec-p384').publicJwk, want: 'ES384' },
    { name: 'RSA 2048', jwk: makeKey('rsa-2048').publicJwk, want: 'RS256' },
    { name: 'given alg ignored', jwk: { ...makeKey('rsa-2048').publicJwk, alg: 'PS512' }, want: 'RS256' },
    { name: 'OKP', jwk: makeKey('ed25519').publicJwk, want: undefined, reason: 'unsupported kty "OKP"' },
    { name: 'oct', jwk: { kty: 'oct', kid: 'a', k: 'AAAA' }, want: undefined, reason: 'unsupported kty "oct"' },
    { name: 'no kid', jwk: { ...makeKey('ec-p256').publicJwk, kid: undefined }, want: undefined, reason: 'missing kid' },
    { name: 'no crv', jwk: { ...makeKey('ec-p256').publicJwk, crv: undefined }, want: undefined, reason: 'missing crv' },
  ];
  for (const c of cases) {
    const r = toPublishedJwk(c.jwk);
    if (c.reason !== undefined) {
      assert.deepEqual(r, { reason: c.reason }, c.name);
    } else {
      assert.ok('jwk' in r, c.name);
      assert.equal(r.jwk.alg, c.want, c.name);
      assert.equal(algForKey(r.jwk), c.want, c.name);
    }
  }
});

test('small RSA keys are published without alg (as SPIRE does)', () => {
  // 1024-bit modulus: 128 bytes with the top bit set.
  const n = Buffer.alloc(128, 0xff).toString('base64url');
  const r = toPublishedJwk({ kty: 'RSA', kid: 'small', n, e: 'AQAB' });
  assert.ok('jwk' in r);
  assert.equal(r.jwk.alg, undefined);
});

test('key set: duplicate kids dropped, cap keeps the newest keys, algs listed in SPIRE order', () => {
  const a = makeKey('ec-p256', 'a');
  const b = makeKey('rsa-2048', 'b');
  const set = toPublicKeySet([a.publicJwk, { ...a.publicJwk }, b.publicJwk], { setKeyUse: true });
  assert.deepEqual(
    set.keys.map((k) => k.kid),
    ['a', 'b'],
  );
  assert.deepEqual(set.dropped, [{ index: 1, kid: 'a', reason: 'duplicate kid' }]);
  assert.deepEqual(signingAlgs(set.keys), ['RS256', 'ES256']);
  assert.deepEqual(signingAlgs([]), ['RS256', 'ES256', 'ES384']);
  const many = Array.from({ length: 105 }, (_, i) => ({ ...a.publicJwk, kid: `k${i}` }));
  const capped = toPublicKeySet(many);
  assert.equal(capped.keys.length, 100);
  assert.equal(capped.keys[0]?.kid, 'k5');
  assert.equal(capped.dropped.length, 5);
});
