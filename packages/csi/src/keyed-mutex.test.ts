import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyedMutex } from './keyed-mutex.ts';

test('KeyedMutex runs tasks of one key one at a time, in order, even after a failure', async () => {
  const m = new KeyedMutex();
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const a = m.run('k', async () => {
    log.push('a start');
    await gate;
    log.push('a end');
    throw new Error('a failed');
  });
  const b = m.run('k', async () => {
    log.push('b');
    return 2;
  });
  const other = m.run('other', async () => {
    log.push('other');
    return 3;
  });
  assert.equal(await other, 3);
  assert.deepEqual(log, ['a start', 'other']);
  release();
  await assert.rejects(a, /a failed/);
  assert.equal(await b, 2);
  assert.deepEqual(log, ['a start', 'other', 'a end', 'b']);
});
