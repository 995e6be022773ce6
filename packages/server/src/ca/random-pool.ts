import type { Random } from '@ztwim/core';

/**
 * Draws from the given Random in blocks: one 4 KiB read instead of a syscall-backed call per
 * 16-byte serial. The byte sequence is the source's own, so injected test randomness still works.
 */
export function pooledRandom(source: Random, blockBytes = 4096): Random {
  let pool: Uint8Array = new Uint8Array(0);
  let off = 0;
  return (n: number): Uint8Array => {
    if (n > blockBytes) return source(n);
    if (off + n > pool.length) {
      pool = source(blockBytes);
      off = 0;
    }
    const out = pool.subarray(off, off + n);
    off += n;
    return out;
  };
}
