// The unix attestor's selector and argument rules that unix-rules.test.ts leaves to the
// real-process tests of unix.test.ts (kept out of mutation runs for their cost), driven here on the
// procfs stand-in: which selectors an unnamed uid or gid gets, what a negative workload_size_limit
// turns off, the default procfs root, the pid check, and a call aborted before anything is read.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';

import { FakeProc } from './testdata/fake-proc.ts';
import { UNIX_SELECTOR_TYPE, UnixWorkloadAttestor } from './unix.ts';
import { formatSelector } from './workload-attestor.ts';

function fixture(): { proc: FakeProc; passwdFile: string; groupFile: string; bin: string } {
  const proc = new FakeProc();
  const passwdFile = join(proc.root, 'passwd');
  const groupFile = join(proc.root, 'group');
  writeFileSync(passwdFile, 'svc:x:1500:1500::/:/bin/false\n');
  writeFileSync(groupFile, 'svcgrp:x:1500:\n');
  const bin = join(proc.root, 'workload-bin');
  writeFileSync(bin, 'binary');
  return { proc, passwdFile, groupFile, bin };
}

describe('UnixWorkloadAttestor: selectors of ids without names', () => {
  const f = fixture();
  after(() => f.proc.remove());

  it('a uid and gid that the user database does not name get uid and gid selectors only', async () => {
    f.proc.set(201, { uid: 7777, gid: 8888, groups: [9999] });
    const got = (await new UnixWorkloadAttestor({ procRoot: f.proc.root, passwdFile: f.passwdFile, groupFile: f.groupFile }).attest(201)).map(formatSelector);
    assert.deepEqual(got, ['unix:uid:7777', 'unix:gid:8888', 'unix:supplementary_gid:9999']);
  });

  it('a named uid with an unnamed gid gets user but not group, and the other way round', async () => {
    f.proc.set(202, { uid: 1500, gid: 8888 });
    f.proc.set(203, { uid: 7777, gid: 1500 });
    const a = new UnixWorkloadAttestor({ procRoot: f.proc.root, passwdFile: f.passwdFile, groupFile: f.groupFile });
    assert.deepEqual((await a.attest(202)).map(formatSelector), ['unix:uid:1500', 'unix:user:svc', 'unix:gid:8888']);
    assert.deepEqual((await a.attest(203)).map(formatSelector), ['unix:uid:7777', 'unix:gid:1500', 'unix:group:svcgrp']);
  });

  it('every selector has the attestor type "unix", which is also its name', async () => {
    f.proc.set(204, { uid: 1500, gid: 1500, exe: f.bin });
    const a = new UnixWorkloadAttestor({ procRoot: f.proc.root, passwdFile: f.passwdFile, groupFile: f.groupFile, discoverWorkloadPath: true });
    assert.equal(a.name, 'unix');
    assert.equal(UNIX_SELECTOR_TYPE, 'unix');
    const got = await a.attest(204);
    assert.equal(got.length, 6);
    for (const s of got) assert.equal(s.type, 'unix');
  });
});

describe('UnixWorkloadAttestor: workload_size_limit below zero', () => {
  const f = fixture();
  after(() => f.proc.remove());

  it('a negative limit keeps the path selector and never hashes, not even an executable that cannot be read', async () => {
    f.proc.set(211, { uid: 1500, gid: 1500, exe: f.bin });
    f.proc.set(212, { uid: 1500, gid: 1500, exe: f.proc.root });
    for (const [pid, exe] of [
      [211, f.bin],
      [212, f.proc.root],
    ] as const) {
      for (const workloadSizeLimit of [-1, -1000]) {
        const config = { procRoot: f.proc.root, passwdFile: f.passwdFile, groupFile: f.groupFile, discoverWorkloadPath: true, workloadSizeLimit };
        const got = (await new UnixWorkloadAttestor(config).attest(pid)).map(formatSelector);
        assert.deepEqual(got, ['unix:uid:1500', 'unix:user:svc', 'unix:gid:1500', 'unix:group:svcgrp', `unix:path:${exe}`]);
      }
    }
  });
});

describe('UnixWorkloadAttestor: defaults and arguments', () => {
  const f = fixture();
  after(() => f.proc.remove());

  it('without procRoot the process is read from /proc', async () => {
    const got = (await new UnixWorkloadAttestor({ passwdFile: f.passwdFile, groupFile: f.groupFile }).attest(process.pid)).map(formatSelector);
    assert.equal(got[0], `unix:uid:${process.geteuid?.()}`);
    assert.ok(got.includes(`unix:gid:${process.getegid?.()}`), got.join(' '));
  });

  it('a pid that is not a positive integer is an invalid argument, even when procRoot holds a directory of that name', async () => {
    for (const pid of [0, -1]) f.proc.set(pid, { uid: 1500, gid: 1500 });
    const a = new UnixWorkloadAttestor({ procRoot: f.proc.root, passwdFile: f.passwdFile, groupFile: f.groupFile });
    for (const pid of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      await assert.rejects(
        a.attest(pid),
        (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && e.message === 'unix: pid must be a positive integer',
        String(pid),
      );
    }
    f.proc.set(1, { uid: 1500, gid: 1500 });
    assert.deepEqual((await a.attest(1)).map(formatSelector)[0], 'unix:uid:1500', 'pid 1 is a pid');
  });

  it('a call aborted before it starts rejects with the reason, before looking for the process', async () => {
    const ac = new AbortController();
    const reason = new Error('caller went away');
    ac.abort(reason);
    await assert.rejects(new UnixWorkloadAttestor({ procRoot: f.proc.root }).attest(299, ac.signal), (e: unknown) => e === reason);
  });
});
