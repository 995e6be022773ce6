import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestQueue } from './request-queue.ts';

test('yields the first requests, waits for pushed ones, and ends once drained after end()', async () => {
  const q = new RequestQueue<number>([1, 2]);
  const it = q[Symbol.asyncIterator]();
  assert.deepEqual(await it.next(), { value: 1, done: false });
  assert.deepEqual(await it.next(), { value: 2, done: false });
  const waiting = it.next();
  let settled = false;
  void waiting.then(() => (settled = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'an empty queue waits');
  q.push(3, 4);
  assert.deepEqual(await waiting, { value: 3, done: false });
  q.end();
  assert.deepEqual(await it.next(), { value: 4, done: false }, 'end() drains what is queued first');
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test('end() wakes a waiting reader', async () => {
  const q = new RequestQueue<string>();
  const it = q[Symbol.asyncIterator]();
  const waiting = it.next();
  q.end();
  assert.deepEqual(await waiting, { value: undefined, done: true });
});
