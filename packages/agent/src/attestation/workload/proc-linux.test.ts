import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { effectiveId, parseProcStatus, parseStartTime, readProcFileSync, readProcStatusSync, readStartTimeSync } from './proc-linux.ts';

// 52 fields as in Linux 6.x; starttime (field 22) = 4242.
const tail = (start: string): string =>
  `S 1 2 3 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 ${start} 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n`;

describe('parseStartTime', () => {
  const cases: ReadonlyArray<{ name: string; text: string; want?: string; error?: RegExp }> = [
    { name: 'plain name', text: `123 (node) ${tail('4242')}`, want: '4242' },
    { name: 'name with spaces and parentheses', text: `123 (a) b (c) d) ${tail('99')}`, want: '99' },
    { name: 'name of only a paren', text: `7 ()) ${tail('5')}`, want: '5' },
    { name: 'no parentheses', text: `123 node ${tail('1')}`, error: /parenthesized/ },
    { name: 'too few fields', text: '123 (x) S 1 2 3', error: /bad stat data/ },
    { name: 'non-numeric starttime', text: `123 (x) ${tail('abc')}`, error: /bad starttime/ },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      if (tc.error !== undefined) assert.throws(() => parseStartTime(tc.text), tc.error);
      else assert.equal(parseStartTime(tc.text), tc.want);
    });
  }

  it('agrees with field 22 of our own stat', () => {
    const raw = readFileSync('/proc/self/stat', 'utf8');
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    assert.equal(readStartTimeSync('/proc/self'), fields[19]);
  });
});

describe('parseProcStatus', () => {
  const cases: ReadonlyArray<{ name: string; text: string; uids?: number[]; gids?: number[]; groups?: string[]; error?: RegExp }> = [
    {
      name: 'full',
      text: 'Name:\tx\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t10 20 \nNgid:\t0\n',
      uids: [1, 2, 3, 4],
      gids: [5, 6, 7, 8],
      groups: ['10', '20'],
    },
    { name: 'empty groups', text: 'Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n', uids: [0, 0, 0, 0], gids: [0, 0, 0, 0], groups: [] },
    { name: 'no Uid line', text: 'Gid:\t0\t0\t0\t0\n', error: /no Uid/ },
    { name: 'garbage uid', text: 'Uid:\tx\nGid:\t0\n', error: /bad id/ },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      if (tc.error !== undefined) {
        assert.throws(() => parseProcStatus(tc.text), tc.error);
        return;
      }
      assert.deepEqual(parseProcStatus(tc.text), { uids: tc.uids, gids: tc.gids, groups: tc.groups });
    });
  }

  it('effectiveId takes the second id, or the only one', () => {
    assert.equal(effectiveId([1, 2, 3, 4]), 2);
    assert.equal(effectiveId([7]), 7);
    assert.throws(() => effectiveId([]));
  });
});

describe('readProcFileSync', () => {
  it('reads procfs files (which report size 0) whole, as readFileSync does', () => {
    // Files that do not change between two reads (status and stat carry live counters).
    for (const f of ['/proc/self/cmdline', '/proc/self/environ', '/proc/self/mountinfo']) {
      assert.equal(readProcFileSync(f), readFileSync(f, 'utf8'), f);
    }
    assert.deepEqual(parseProcStatus(readProcFileSync('/proc/self/status')), parseProcStatus(readFileSync('/proc/self/status', 'utf8')));
    const st = readProcStatusSync('/proc/self');
    assert.equal(effectiveId(st.uids), process.geteuid?.());
    assert.equal(effectiveId(st.gids), process.getegid?.());
  });

  it('grows past its first buffer, and the next short read is not mixed with the old text', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-procread-'));
    try {
      const big = join(dir, 'big');
      const text = Array.from({ length: 3000 }, (_, i) => `line ${i} ü\n`).join('');
      writeFileSync(big, text);
      assert.equal(readProcFileSync(big), text);
      const small = join(dir, 'small');
      writeFileSync(small, 'short');
      assert.equal(readProcFileSync(small), 'short');
      writeFileSync(small, '');
      assert.equal(readProcFileSync(small), '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('throws the errno of a missing file', () => {
    assert.throws(() => readProcFileSync('/proc/self/no-such-file'), { code: 'ENOENT' });
  });
});
