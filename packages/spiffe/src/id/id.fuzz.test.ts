import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SpiffeError, SpiffeId, TrustDomain } from '../index.ts';
import { mutatedString } from '../testdata/mutate.ts';

/** Independent oracle for SPIFFE-ID.md validity (as enforced by SpiffeId.parse). */
function oracle(s: string): boolean {
  const m = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[A-Za-z0-9._-]+)*)$/.exec(s);
  if (m === null) return false;
  const td = m[1] as string;
  const path = m[2] as string;
  if (td.length > 255 || Buffer.byteLength(s) > 2048) return false;
  return !path
    .split('/')
    .slice(1)
    .some((seg) => seg === '.' || seg === '..');
}

const alphabet = fc.constantFrom(...'spife:/.-_aAzZ09%?#@ \u00e9\u0000'.split(''));
const idLike = fc.oneof(
  fc.string({ unit: alphabet, maxLength: 40 }),
  fc.string({ unit: alphabet, maxLength: 30 }).map((s) => 'spiffe://' + s),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  mutatedString('spiffe://example.org/ns/default/sa/web'),
  mutatedString('spiffe://td/..path/./x'),
);

test('fuzz: SpiffeId.parse returns an ID iff the oracle accepts, else throws SpiffeError', () => {
  fc.assert(
    fc.property(idLike, (s) => {
      let id: SpiffeId | undefined;
      try {
        id = SpiffeId.parse(s);
      } catch (e) {
        assert.ok(e instanceof SpiffeError && e.code === 'ERR_SPIFFEID_INVALID', `unexpected ${String(e)}`);
      }
      assert.equal(id !== undefined, oracle(s), s);
      if (id !== undefined) assert.equal(id.toString(), s);
    }),
    { numRuns: 3000 },
  );
});

test('fuzz: TrustDomain.parse returns a trust domain or throws SpiffeError', () => {
  fc.assert(
    fc.property(fc.oneof(idLike, fc.string({ unit: fc.constantFrom(...'abc.-_A:/9'.split('')), maxLength: 20 })), (s) => {
      try {
        const td = TrustDomain.parse(s);
        assert.match(td.name, /^[a-z0-9._-]{1,255}$/);
        if (!s.includes(':/')) assert.equal(td.name, s);
      } catch (e) {
        assert.ok(e instanceof SpiffeError, `unexpected ${String(e)}`);
      }
    }),
    { numRuns: 3000 },
  );
});
