import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from './eventually.ts';

test('eventually returns the first value that is neither undefined nor false', async () => {
  let n = 0;
  const v = await eventually('the third call', () => (++n >= 3 ? `call ${n}` : n === 1 ? undefined : false), { intervalMs: 1 });
  assert.equal(v, 'call 3');
  assert.equal(await eventually('an async check', async () => 0), 0, 'a falsy value other than false is a result');
});

test('eventually stops at the first error of the check', async () => {
  let n = 0;
  await assert.rejects(
    eventually('a dead peer', () => {
      n++;
      throw new Error('peer exited');
    }),
    /peer exited/,
  );
  assert.equal(n, 1);
});

test('eventually times out naming what it waited for', async () => {
  const t0 = Date.now();
  await assert.rejects(
    eventually('a socket that never opens', () => false, { timeoutMs: 30, intervalMs: 5 }),
    /^Error: timed out after 30 ms waiting for a socket that never opens$/,
  );
  assert.ok(Date.now() - t0 >= 30);
});
