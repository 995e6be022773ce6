import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallAbort } from './call-abort.ts';

test('CallAbort: no signal until asked; a signal asked for late is already aborted with the first reason', () => {
  const c = new CallAbort();
  assert.equal(c.aborted, false);
  assert.equal(c.reason, undefined);
  c.abort('first');
  c.abort('second');
  assert.equal(c.aborted, true);
  assert.equal(c.reason, 'first');
  const s = c.signal;
  assert.equal(s.aborted, true);
  assert.equal(s.reason, 'first');
  assert.equal(c.signal, s, 'one signal per call');
});

test('CallAbort: a signal taken before the end sees the abort event once, with the reason', () => {
  const c = new CallAbort();
  const s = c.signal;
  assert.equal(s.aborted, false);
  const seen: unknown[] = [];
  s.addEventListener('abort', () => seen.push(s.reason));
  c.abort('done');
  c.abort('again');
  assert.deepEqual(seen, ['done']);
});
