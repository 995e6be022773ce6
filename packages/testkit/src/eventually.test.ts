import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, holdsFor } from './eventually.ts';

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

test('holdsFor returns after the window when the check kept holding, having checked it at both ends', async () => {
  const calls: number[] = [];
  const t0 = Date.now();
  await holdsFor('nothing happens', () => calls.push(Date.now()) > 0, { forMs: 40, intervalMs: 5 });
  assert.ok(Date.now() - t0 >= 40, 'the whole window');
  assert.ok(calls.length >= 2, `checked ${calls.length} times`);
  assert.ok((calls[0] ?? Infinity) - t0 < 40, 'checked at the start');
  assert.ok((calls.at(-1) ?? 0) - t0 >= 40, 'checked again once the window was over');
});

test('holdsFor fails as soon as the check fails, naming what should have held', async () => {
  let n = 0;
  const t0 = Date.now();
  await assert.rejects(
    holdsFor('no retry before the backoff', () => ++n < 3, { forMs: 10_000, intervalMs: 1 }),
    /^Error: no retry before the backoff: no longer true after \d+ of 10000 ms$/,
  );
  assert.equal(n, 3);
  assert.ok(Date.now() - t0 < 5_000);
});

test('eventually with retryErrors retries a throwing check and names its last error on timeout', async () => {
  let n = 0;
  const v = await eventually(
    'a server that refuses twice',
    () => {
      if (++n < 3) throw new Error(`refused ${n}`);
      return n;
    },
    { intervalMs: 1, retryErrors: true },
  );
  assert.equal(v, 3);
  await assert.rejects(
    eventually(
      'a server that never listens',
      () => {
        throw new Error('ECONNREFUSED');
      },
      { timeoutMs: 20, intervalMs: 5, retryErrors: true },
    ),
    /^Error: timed out after 20 ms waiting for a server that never listens; last error: ECONNREFUSED$/,
  );
});
