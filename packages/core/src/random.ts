import { randomBytes } from 'node:crypto';

/** Randomness as a dependency: serial numbers, JWT ids, key ids and join tokens come from here. */
export type Random = (bytes: number) => Uint8Array;

export const cryptoRandom: Random = (n) => randomBytes(n);

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A random string over [a-zA-Z0-9] without modulo bias (SPIRE's key ids are 32 such chars). */
export function randomAlnum(random: Random, length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of random(length * 2)) {
      if (b < 248) out += ALNUM[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** A random RFC 4122 version-4 UUID. */
export function randomUuid(random: Random): string {
  const b = Buffer.from(random(16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
