import assert from 'node:assert/strict';
import { it } from 'node:test';
import { pooledRandom } from './random-pool.ts';

it('pooledRandom hands out the source bytes in order, refilling in blocks', () => {
  let counter = 0;
  const calls: number[] = [];
  const source = (n: number): Uint8Array => {
    calls.push(n);
    return Uint8Array.from({ length: n }, () => counter++ & 0xff);
  };
  const r = pooledRandom(source, 8);
  assert.deepEqual([...r(3)], [0, 1, 2]);
  assert.deepEqual([...r(4)], [3, 4, 5, 6]);
  assert.deepEqual([...r(3)], [8, 9, 10], 'a request that does not fit starts a new block');
  assert.deepEqual(
    [...r(20)],
    Array.from({ length: 20 }, (_, i) => 16 + i),
    'large requests bypass the pool',
  );
  assert.deepEqual(calls, [8, 8, 20]);
});
