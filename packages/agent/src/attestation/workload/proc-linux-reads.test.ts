// What reading procfs may cost on every Workload API call: readProcFileSync closes the file it
// opened, whatever happens, and its one scratch buffer grows only when a file does not fit (so
// many small reads keep it at its size). Also the remaining texts of the parsers' refusals.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { openFds } from '@ztwim/testkit';

import { effectiveId, parseStartTime, readProcFileSync } from './proc-linux.ts';

describe('readProcFileSync: resources', () => {
  it('the file is closed after each read', () => {
    const before = openFds();
    for (let i = 0; i < 5; i++) readProcFileSync('/proc/self/cmdline');
    assert.equal(openFds(), before);
  });

  it('small reads do not grow the scratch buffer: 12 reads of a short file allocate nothing that stays', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-procbuf-'));
    try {
      const small = join(dir, 'small');
      writeFileSync(small, 'Uid:\t1\t1\t1\t1\n');
      readProcFileSync(small);
      const before = process.memoryUsage().arrayBuffers;
      for (let i = 0; i < 12; i++) assert.equal(readProcFileSync(small), 'Uid:\t1\t1\t1\t1\n');
      // Doubling on every read would hold 4 KiB << 13 (32 MiB) by now.
      assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024, 'no growth for files that fit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('procfs parsers: refusal texts and the task name', () => {
  it('no ids at all: "no ids"', () => {
    assert.throws(() => effectiveId([]), { message: 'no ids' });
  });

  it("a '(' as the very first character opens the task name", () => {
    const fields = Array.from({ length: 36 }, (_, i) => (i === 19 ? '4242' : String(i + 3))).join(' ');
    assert.equal(parseStartTime(`(x) ${fields}\n`), '4242');
  });
});
