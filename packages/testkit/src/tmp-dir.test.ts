import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { makeTmpDir, withTmpDir } from './tmp-dir.ts';

test('makeTmpDir writes files inside a fresh directory that cleanup removes', () => {
  const a = makeTmpDir('ztwim-tk-');
  const b = makeTmpDir('ztwim-tk-');
  assert.notEqual(a.path, b.path);
  const p = a.write('x.txt', 'hello');
  assert.equal(p, a.file('x.txt'));
  assert.equal(readFileSync(p, 'utf8'), 'hello');
  a.cleanup();
  b.cleanup();
  assert.equal(existsSync(a.path), false);
  assert.equal(existsSync(b.path), false);
});

test('withTmpDir removes the directory even when the body throws', async () => {
  let seen = '';
  await assert.rejects(
    withTmpDir(async (d) => {
      seen = d.path;
      d.write('f', 'x');
      throw new Error('body failed');
    }),
    /body failed/,
  );
  assert.ok(seen !== '');
  assert.equal(existsSync(seen), false);
  assert.equal(await withTmpDir(async (d) => existsSync(d.path)), true);
});
