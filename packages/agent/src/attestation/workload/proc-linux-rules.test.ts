// procfs parsing rules the peer tracker and the unix attestor rely on: the ids of the `Uid:`,
// `Gid:` and `Groups:` lines of /proc/<pid>/status (decimal, all of them, nothing else), and the
// start time, field 22 of /proc/<pid>/stat, counted as SPIRE's peertracker counts it (from the
// last `)`, at least 38 fields, as since Linux 2.1.22).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { exeIdentitySync, parseProcStatus, parseStartTime } from './proc-linux.ts';

/** A stat line with `total` fields in all (pid and name included), starttime (field 22) = `start`. */
function stat(total: number, start = '777', name = 'x'): string {
  const fields = Array.from({ length: total - 2 }, (_, i) => (i === 19 ? start : String(i + 3)));
  return `42 (${name}) ${fields.join(' ')}\n`;
}

describe('parseStartTime: field 22, counted from the last parenthesis', () => {
  it('38 fields (the minimum SPIRE accepts) give the start time; 37 do not', () => {
    assert.equal(parseStartTime(stat(38)), '777');
    assert.throws(() => parseStartTime(stat(37)), /bad stat data or unsupported platform/);
  });

  it('a trailing blank is no field: 37 fields and a blank are still too few', () => {
    const text = stat(37).replace(/\n$/, ' \n');
    assert.throws(() => parseStartTime(text), /bad stat data or unsupported platform/);
  });

  it('a multi-digit start time is returned whole; one with a letter or sign anywhere is refused', () => {
    assert.equal(parseStartTime(stat(52, '18446744073709551615')), '18446744073709551615');
    for (const bad of ['x1', '1x', '-1', '+1', '1.0', '']) {
      assert.throws(() => parseStartTime(stat(52, bad)), /bad starttime in stat/, JSON.stringify(bad));
    }
  });

  it("a name with ')' and ' ' in it does not shift the fields", () => {
    assert.equal(parseStartTime(stat(52, '31337', 'evil) 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21')), '31337');
  });

  it("a ')' without '(' is not a task name", () => {
    assert.throws(() => parseStartTime(stat(52).replace('(', '')), /task name is not parenthesized/);
  });
});

describe('parseProcStatus: Uid, Gid and Groups lines', () => {
  it('multi-digit ids, every line found wherever it is, blank lines and a missing final newline included', () => {
    const text = 'Name:\tworkload\n\nUmask:\t0022\nUid:\t1000\t1001\t1002\t1003\n\nGid:\t2000\t2001\t2002\t2003\nNgid:\t0\nGroups:\t100 4242 65534';
    assert.deepEqual(parseProcStatus(text), { uids: [1000, 1001, 1002, 1003], gids: [2000, 2001, 2002, 2003], groups: ['100', '4242', '65534'] });
  });

  it('an id with a letter, a sign or a dot anywhere is refused, naming the bad field', () => {
    for (const bad of ['x1', '1x', '-1', '1.5']) {
      assert.throws(() => parseProcStatus(`Uid:\t0\t${bad}\t0\t0\nGid:\t0\t0\t0\t0\n`), { message: `bad id ${JSON.stringify(bad)} in status` });
      assert.throws(() => parseProcStatus(`Uid:\t0\t0\t0\t0\nGid:\t${bad}\t0\t0\t0\n`), { message: `bad id ${JSON.stringify(bad)} in status` });
    }
  });

  it('an empty Uid or Gid line, or none, is refused', () => {
    assert.throws(() => parseProcStatus('Uid:\t\nGid:\t0\t0\t0\t0\n'), { message: 'no Uid line in status' });
    assert.throws(() => parseProcStatus('Uid:\t0\t0\t0\t0\nGid:\t \n'), { message: 'no Gid line in status' });
    assert.throws(() => parseProcStatus('Uid:\t0\t0\t0\t0\n'), { message: 'no Gid line in status' });
    assert.throws(() => parseProcStatus('Gid:\t0\t0\t0\t0\n'), { message: 'no Uid line in status' });
  });

  it('only lines that start with the key count (no Uid inside another line)', () => {
    const text = 'Name:\tUid:\t5\nXUid:\t6\nUid:\t7\t8\t9\t10\nGid:\t1\t2\t3\t4\nNoGroups:\t99\n';
    assert.deepEqual(parseProcStatus(text), { uids: [7, 8, 9, 10], gids: [1, 2, 3, 4], groups: [] });
  });
});

describe('exeIdentitySync: the running executable as dev:ino', () => {
  it('names the file /proc/<pid>/exe points to, or the errno when there is none', () => {
    const st = statSync(process.execPath, { bigint: true });
    assert.equal(exeIdentitySync('/proc/self'), `${st.dev}:${st.ino}`);
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-exeid-'));
    try {
      assert.equal(exeIdentitySync(join(dir, 'no-such-pid')), 'unavailable:ENOENT');
      symlinkSync(join(dir, 'exe'), join(dir, 'exe'));
      assert.equal(exeIdentitySync(dir), 'unavailable:ELOOP');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
