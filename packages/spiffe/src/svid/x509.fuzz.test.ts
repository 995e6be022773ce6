import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { SpiffeError, TrustDomain, X509Bundle, X509Svid, concatDer, splitConcatenatedDer, verifyX509Svid } from '../index.ts';
import { T0, makePki, pkcs8 } from '../testdata/fixtures.ts';
import { mutated } from '../testdata/mutate.ts';

const td = TrustDomain.parse('example.org');
const pki = await makePki('example.org');
const bundle = X509Bundle.fromAuthorities(td, [pki.root.der]);
const chain = concatDer([pki.leafViaIntermediate.der, pki.intermediate.der]);
const key = await pkcs8(pki.leafKeys);

function outcome(f: () => unknown): 'ok' | 'error' {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (!(e instanceof SpiffeError)) throw new Error(`non-SpiffeError thrown: ${String(e)}`, { cause: e });
    return 'error';
  }
}

test('fuzz: X509Svid.parseRaw on mutated chains and keys returns an SVID or throws SpiffeError', () => {
  assert.equal(
    outcome(() => X509Svid.parseRaw(chain, key)),
    'ok',
  );
  fc.assert(
    fc.property(fc.oneof(mutated(chain), fc.constant(chain)), fc.oneof(mutated(key), fc.constant(key), fc.uint8Array({ maxLength: 64 })), (c, k) => {
      outcome(() => X509Svid.parseRaw(c, k));
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: verifyX509Svid on mutated DER only ever verifies the untouched chain', () => {
  const original = [pki.leafViaIntermediate.der, pki.intermediate.der];
  assert.equal(
    outcome(() => verifyX509Svid(original, bundle, { now: T0 })),
    'ok',
  );
  fc.assert(
    fc.property(mutated(chain), (c) => {
      let certs: Uint8Array[];
      try {
        certs = splitConcatenatedDer(c);
      } catch (e) {
        assert.ok(e instanceof SpiffeError);
        certs = [c];
      }
      const r = outcome(() => verifyX509Svid(certs, bundle, { now: T0 }));
      if (r === 'ok') {
        // Only the leaf and its signer matter; a mutated leaf or issuing intermediate must never verify.
        assert.deepEqual(certs.slice(0, 2), original);
      }
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: verifyX509Svid with a mutated bundle root verifies only if subject and key are intact', () => {
  // The root's own signature is not part of path validation (as in Go), so a root whose
  // signature bytes were changed still anchors the chain; its name and key must not change.
  const orig = new X509Certificate(pki.root.der);
  fc.assert(
    fc.property(mutated(pki.root.der), (root) => {
      let b: X509Bundle;
      try {
        b = X509Bundle.fromAuthorities(td, [root]);
      } catch (e) {
        assert.ok(e instanceof SpiffeError);
        return;
      }
      const r = outcome(() => verifyX509Svid([pki.leaf.der], b, { now: T0 }));
      if (r === 'ok') {
        const m = new X509Certificate(root);
        assert.ok(m.publicKey.equals(orig.publicKey));
        assert.equal(m.subject, orig.subject);
      }
    }),
    { numRuns: 1000 },
  );
});
