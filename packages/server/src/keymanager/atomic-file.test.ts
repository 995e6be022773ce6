import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { atomicWriteFile } from './atomic-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-atomic-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('atomicWriteFile replaces the file with exact mode and leaves no temp file', async () => {
  const path = join(dir, 'state.json');
  writeFileSync(path, 'old', { mode: 0o644 });
  await atomicWriteFile(path, 'new content', 0o600);
  assert.equal(readFileSync(path, 'utf8'), 'new content');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  await atomicWriteFile(path, Buffer.from([1, 2, 3]));
  assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
  assert.deepEqual(readdirSync(dir), ['state.json']);
});

it('atomicWriteFile fails without touching the target when the directory is missing', async () => {
  await assert.rejects(atomicWriteFile(join(dir, 'missing', 'x'), 'data'), { code: 'ENOENT' });
});
