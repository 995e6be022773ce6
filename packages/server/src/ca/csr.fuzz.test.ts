import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isZtwimError } from '@ztwim/core';
import { parseCsr } from './csr.ts';
import { makeCsr, P256, RSA2048 } from './fixtures.test-util.ts';

/** parseCsr must return a parsed request or throw ERR_INVALID_ARGUMENT; nothing else, never hang. */
function parseOrInvalid(der: Uint8Array): 'ok' | 'invalid' {
  try {
    const csr = parseCsr(der);
    assert.equal(csr.publicKey.type, 'public');
    return 'ok';
  } catch (e) {
    if (isZtwimError(e, 'ERR_INVALID_ARGUMENT')) return 'invalid';
    throw e;
  }
}

type Mutation =
  | { kind: 'flip'; at: number; mask: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.constantFrom(0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x85, 0xff, 0x30, 0x31, 0x06, 0xa0),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
);

function apply(src: Uint8Array, muts: readonly Mutation[]): Uint8Array {
  let b = Buffer.from(src);
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    switch (m.kind) {
      case 'flip':
        if (b.length) b[at] = (b[at] as number) ^ m.mask;
        break;
      case 'set':
        if (b.length) b[at] = m.value;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
    }
  }
  return b;
}

describe('parseCsr fuzz', () => {
  const seeds: Uint8Array[] = [];
  before(async () => {
    seeds.push(await makeCsr(P256, { dnsNames: ['a.example'], uris: ['spiffe://example.org/w'] }));
    seeds.push(await makeCsr(P256));
    seeds.push(await makeCsr(RSA2048, { dnsNames: ['b.example'] }));
  });

  it('every seed parses', () => {
    for (const s of seeds) assert.equal(parseOrInvalid(s), 'ok');
  });

  it('random bytes: a value or ERR_INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => void parseOrInvalid(b)),
      { numRuns: 3000 },
    );
  });

  it('random DER-ish bytes starting with a SEQUENCE header', () => {
    const arb = fc
      .tuple(fc.constantFrom(0x30, 0x31, 0xa0), fc.integer({ min: 0, max: 0x84 }), fc.uint8Array({ maxLength: 300 }))
      .map(([tag, len, rest]) => Uint8Array.from([tag, len, ...rest]));
    fc.assert(
      fc.property(arb, (b) => void parseOrInvalid(b)),
      { numRuns: 3000 },
    );
  });

  it('mutated valid requests: a value or ERR_INVALID_ARGUMENT, and no mutated request verifies', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 }), (seedIdx, muts) => {
        const seed = seeds[seedIdx % seeds.length] as Uint8Array;
        const der = apply(seed, muts);
        if (parseOrInvalid(der) === 'ok') {
          accepted++;
          // only a mutation that leaves the request byte-identical may be accepted
          assert.ok(Buffer.from(der).equals(Buffer.from(seed)), 'a changed request must not verify');
        }
      }),
      { numRuns: 4000 },
    );
    assert.ok(accepted < 400, `suspiciously many accepted mutations: ${accepted}`);
  });
});
