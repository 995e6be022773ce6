// JWS signature rules (spire-core.md §4.2 step 9: a bad signature or a key-type mismatch is a
// refusal, never a crash) that jws-signature.test.ts does not pin down: written for the survivors
// of the mutation run of jws-signature.ts (docs/mutation-testing.md). A separate file, so the
// mutants that jws-signature.test.ts kills keep their incremental results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { verifyJwsSignature } from './jws-signature.ts';

test('JWT-SVID §4.2 step 9: a key whose type does not fit the algorithm verifies nothing, without throwing', () => {
  const input = 'eyJhbGciOiJFUzI1NiJ9.e30';
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const sig = nodeSign('sha256', Buffer.from(input), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
  // node:crypto throws for these pairings (invalid digest, operation not supported): the answer is false.
  for (const type of ['ed25519', 'x25519'] as const) {
    const wrong = generateKeyPairSync(type as 'ed25519').publicKey;
    assert.equal(verifyJwsSignature(`${input}.x`, 'ES256', wrong, sig), false, type);
  }
  assert.equal(verifyJwsSignature(`${input}.x`, 'ES256', ec.publicKey, sig), true);
});
