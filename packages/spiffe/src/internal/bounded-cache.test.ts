import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedCache } from './bounded-cache.ts';

test('BoundedCache keeps the last `limit` entries used: a hit is kept, the least recently used goes', () => {
  const c = new BoundedCache<string, number>(2);
  c.set('a', 1);
  c.set('b', 2);
  assert.equal(c.get('a'), 1); // now b is the oldest
  c.set('c', 3);
  assert.equal(c.size, 2);
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('a'), 1);
  assert.equal(c.get('c'), 3);
  // Setting a present key replaces it without evicting another.
  c.set('c', 4);
  assert.equal(c.size, 2);
  assert.equal(c.get('a'), 1);
  assert.equal(c.get('c'), 4);
});
