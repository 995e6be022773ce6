// The sha256 selector's size limit (SPIRE's workload_size_limit) on a file larger than one read
// chunk: the file's own size is checked before anything is read, so the refusal names that size,
// not the bytes read up to some chunk boundary.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';

import { sha256OfFile } from './unix.ts';

describe('sha256OfFile: a file over the limit', () => {
  it('a 3 MiB file over a 1-byte limit is refused with its full size, before it is hashed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-sizelimit-'));
    try {
      const path = join(dir, 'big');
      const size = 3 * 1024 * 1024 + 5;
      writeFileSync(path, Buffer.alloc(size, 0x61));
      await assert.rejects(
        sha256OfFile(path, 1),
        (e: unknown) =>
          isZtwimError(e, 'ERR_INTERNAL') &&
          e.message === `unix: sha256 digest: workload ${path} exceeds size limit (${size} > 1)` &&
          e.fields.size === size &&
          e.fields.limit === 1,
      );
      await assert.rejects(sha256OfFile(path, size - 1), (e: unknown) => isZtwimError(e) && e.message.endsWith(`(${size} > ${size - 1})`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
