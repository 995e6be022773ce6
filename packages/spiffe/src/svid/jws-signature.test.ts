import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { CompactSign } from 'jose';
import { verifyJwsSignature } from './jws-signature.ts';

// verifyJwsSignature replaced jose's compactVerify in parseAndValidateJwtSvid: it must accept what
// jose (an independent JWS implementation) signs for every JWT-SVID algorithm and refuse what
// jose's verification refused.
const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ec521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const payload = new TextEncoder().encode(JSON.stringify({ sub: 'spiffe://example.org/w', aud: ['a'], exp: 2_000_000_000 }));
const pairs = [
  ['ES256', ec256],
  ['ES384', ec384],
  ['ES512', ec521],
  ...(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const).map((alg) => [alg, rsa] as const),
] as const;

const sigOf = (token: string): Buffer => Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url');
const inputOf = (token: string): string => token.slice(0, token.lastIndexOf('.'));

test('RFC 7518 §3: a token jose signed verifies for every JWT-SVID algorithm; a changed payload or signature does not', async () => {
  for (const [alg, pair] of pairs) {
    const token = await new CompactSign(payload).setProtectedHeader({ alg }).sign(pair.privateKey);
    const sig = sigOf(token);
    assert.equal(verifyJwsSignature(token, alg, pair.publicKey, sig), true, alg);
    const [h, p] = token.split('.') as [string, string];
    const changed = `${h}.${p.slice(0, -2)}${p.endsWith('A') ? 'B' : 'A'}${p.slice(-1)}.x`;
    assert.equal(verifyJwsSignature(changed, alg, pair.publicKey, sig), false, `${alg} changed payload`);
    const flipped = Buffer.from(sig);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    assert.equal(verifyJwsSignature(token, alg, pair.publicKey, flipped), false, `${alg} changed signature`);
    const other = alg.startsWith('ES')
      ? generateKeyPairSync('ec', { namedCurve: pair.publicKey.asymmetricKeyDetails?.namedCurve ?? '' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.equal(verifyJwsSignature(token, alg, other.publicKey, sig), false, `${alg} other key`);
  }
});

test('RFC 7518 §3.4: an ECDSA signature in DER form instead of R || S is refused', () => {
  const input = 'eyJhbGciOiJFUzI1NiJ9.e30';
  const der = nodeSign('sha256', Buffer.from(input), ec256.privateKey);
  assert.equal(verifyJwsSignature(`${input}.x`, 'ES256', ec256.publicKey, der), false);
  const p1363 = nodeSign('sha256', Buffer.from(input), { key: ec256.privateKey, dsaEncoding: 'ieee-p1363' });
  assert.equal(verifyJwsSignature(`${input}.x`, 'ES256', ec256.publicKey, p1363), true);
});

test('RFC 7518 §3.5: an RSASSA-PSS signature whose salt is not the hash length is refused', () => {
  const input = 'eyJhbGciOiJQUzI1NiJ9.e30';
  const sign = (saltLength: number): Buffer =>
    nodeSign('sha256', Buffer.from(input), { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
  assert.equal(verifyJwsSignature(`${input}.x`, 'PS256', rsa.publicKey, sign(32)), true);
  assert.equal(verifyJwsSignature(`${input}.x`, 'PS256', rsa.publicKey, sign(20)), false);
});

test('RFC 7518 §3.3: an RSA key under 2048 bits and an unknown alg verify nothing', () => {
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const input = 'eyJhbGciOiJSUzI1NiJ9.e30';
  assert.equal(verifyJwsSignature(`${input}.x`, 'RS256', weak.publicKey, nodeSign('sha256', Buffer.from(input), weak.privateKey)), false);
  assert.equal(verifyJwsSignature(`${input}.x`, 'HS256', rsa.publicKey, nodeSign('sha256', Buffer.from(input), rsa.privateKey)), false);
});
