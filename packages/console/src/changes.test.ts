import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { ChangeWatcher, type ChangeEvent } from './changes.ts';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((res) => setImmediate(res));
};

test('one poll serves every listener; a moved fingerprint reaches each once; no polling without listeners', async () => {
  const clock = new FakeClock();
  let fp = '1/1/1/10.0';
  let polls = 0;
  const w = new ChangeWatcher({
    clock,
    intervalMs: 1000,
    fingerprint: async () => {
      polls++;
      return fp;
    },
  });
  const a: ChangeEvent[] = [];
  const b: ChangeEvent[] = [];
  const offA = w.subscribe((e) => a.push(e));
  const offB = w.subscribe((e) => b.push(e));
  clock.advance(0);
  await settle();
  clock.advance(1000);
  await settle();
  assert.equal(polls, 2, 'two listeners, one poll per interval');
  assert.deepEqual(a, []);
  fp = '1/1/1/10.1'; // an entry edited: same counts, the server's write revision moved
  clock.advance(1000);
  await settle();
  assert.deepEqual(a, [{ kind: 'changed', fingerprint: '1/1/1/10.1' }]);
  assert.deepEqual(b, a);
  offA();
  offB();
  assert.equal(w.listeners, 0);
  const before = polls;
  clock.advance(10_000);
  await settle();
  assert.equal(polls, before, 'nobody listens: no polls');
});

test('a failed poll is an error event, and polling goes on', async () => {
  const clock = new FakeClock();
  let fail = false;
  const w = new ChangeWatcher({
    clock,
    fingerprint: async () => {
      if (fail) throw new Error('server API: connect ENOENT');
      return 'x';
    },
  });
  const got: ChangeEvent[] = [];
  const off = w.subscribe((e) => got.push(e));
  clock.advance(0);
  await settle();
  fail = true;
  clock.advance(1000);
  await settle();
  fail = false;
  clock.advance(1000);
  await settle();
  assert.deepEqual(got, [{ kind: 'error', message: 'server API: connect ENOENT' }]);
  off();
});
