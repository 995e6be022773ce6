/** fast-check arbitraries that mutate valid inputs: bit flips, byte sets, truncation, splicing. */
import fc from 'fast-check';

export type Mutation =
  | { kind: 'flip'; pos: number; bit: number }
  | { kind: 'set'; pos: number; value: number }
  | { kind: 'truncate'; len: number }
  | { kind: 'insert'; pos: number; bytes: Uint8Array }
  | { kind: 'delete'; pos: number; count: number }
  | { kind: 'splice'; from: number; to: number; len: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), pos: fc.nat(), value: fc.constantFrom(0x00, 0xff, 0x80, 0x7f, 0x30, 0x81, 0x82, 0x01) }),
  fc.record({ kind: fc.constant('truncate' as const), len: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), pos: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), pos: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('splice' as const), from: fc.nat(), to: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
);

export function applyMutation(input: Uint8Array, m: Mutation): Uint8Array {
  const n = input.length;
  if (n === 0) return input;
  const out = Uint8Array.from(input);
  switch (m.kind) {
    case 'flip': {
      const p = m.pos % n;
      out[p] = (out[p] as number) ^ (1 << m.bit);
      return out;
    }
    case 'set':
      out[m.pos % n] = m.value;
      return out;
    case 'truncate':
      return out.subarray(0, m.len % n);
    case 'insert': {
      const p = m.pos % (n + 1);
      return Uint8Array.from([...out.subarray(0, p), ...m.bytes, ...out.subarray(p)]);
    }
    case 'delete': {
      const p = m.pos % n;
      return Uint8Array.from([...out.subarray(0, p), ...out.subarray(p + m.count)]);
    }
    case 'splice': {
      const from = m.from % n;
      const to = m.to % n;
      const chunk = out.slice(from, from + m.len);
      return Uint8Array.from([...out.subarray(0, to), ...chunk, ...out.subarray(to + chunk.length)]);
    }
  }
}

/** One to three mutations of `input`. */
export function mutated(input: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => ms.reduce(applyMutation, input));
}

/** Mutations of a string (as UTF-8 bytes, decoded leniently). */
export function mutatedString(input: string): fc.Arbitrary<string> {
  return mutated(new TextEncoder().encode(input)).map((b) => new TextDecoder().decode(b));
}
