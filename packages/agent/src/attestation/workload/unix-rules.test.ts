// The unix workload attestor's rules, driven through a procfs stand-in (its `procRoot` option,
// SPIRE's HOST_PROC) so that each failure can be produced exactly: what a failed attestation
// carries (code, message, pid, cause, log line), how the sha256 selector refuses a file over the
// limit or one that grows past it while hashed, and that an aborted call never returns selectors.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants as fsConstants, mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { createLogger, isZtwimError, type Logger, type ZtwimError } from '@ztwim/core';
import { openFds } from '@ztwim/testkit';

import { FakeProc } from './testdata/fake-proc.ts';
import { parseProcStatus } from './proc-linux.ts';
import { UnixWorkloadAttestor, sha256OfFile } from './unix.ts';
import { formatSelector } from './workload-attestor.ts';

const proc = new FakeProc();
after(() => proc.remove());
const passwdFile = join(proc.root, 'passwd');
const groupFile = join(proc.root, 'group');
writeFileSync(passwdFile, 'svc:x:1500:1500::/:/bin/false\n');
writeFileSync(groupFile, 'svcgrp:x:1500:\nusers:x:100:\n');
const bin = join(proc.root, 'workload-bin');
writeFileSync(bin, 'x'.repeat(1000));
const BIN_SHA = '44f8354494a5ba03ba1792a8d3e9c534c47a9181980fde7a3f44b06ef2ae7c7f'; // sha256sum of 1000 'x'

function capture(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } }) };
}

function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** The rejection of `p`, which must be a ZtwimError of `code`. */
async function refusal(p: Promise<unknown>, code: string): Promise<ZtwimError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isZtwimError(e), String(e));
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail('not refused');
}

describe('UnixWorkloadAttestor: procRoot and the status it reads', () => {
  it('reads uid, gid and groups under procRoot; a supplementary group gets a name only when its id is decimal', async () => {
    proc.set(101, { uid: 1500, gid: 1500, groups: [100, '0x64', '1e2', 4242] });
    const got = (await new UnixWorkloadAttestor({ procRoot: proc.root, passwdFile, groupFile }).attest(101)).map(formatSelector);
    assert.deepEqual(got, [
      'unix:uid:1500',
      'unix:user:svc',
      'unix:gid:1500',
      'unix:group:svcgrp',
      'unix:supplementary_gid:100',
      'unix:supplementary_group:users',
      'unix:supplementary_gid:0x64',
      'unix:supplementary_gid:1e2',
      'unix:supplementary_gid:4242',
    ]);
  });

  it('a pid without a process: ERR_INTERNAL "unix: failed to get process" with the pid and the read error', async () => {
    const e = await refusal(new UnixWorkloadAttestor({ procRoot: proc.root }).attest(102), 'ERR_INTERNAL');
    assert.equal(e.message, 'unix: failed to get process');
    assert.deepEqual(e.fields, { pid: 102 });
    assert.equal((e.cause as NodeJS.ErrnoException).code, 'ENOENT');
  });

  it('a workload_size_limit that is not an integer is a config error', () => {
    for (const workloadSizeLimit of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assert.throws(
        () => new UnixWorkloadAttestor({ workloadSizeLimit }),
        (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message === 'unix: workload_size_limit must be an integer',
      );
    }
  });

  it('a call aborted while the process is read returns no selectors: it rejects with the reason', async () => {
    const ac = new AbortController();
    const reason = new Error('client hung up');
    const status = parseProcStatus('Uid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\n');
    const view = {
      status: () => {
        ac.abort(reason);
        return status;
      },
    };
    await assert.rejects(new UnixWorkloadAttestor({ passwdFile, groupFile }).attest(process.pid, ac.signal, view), (e: unknown) => e === reason);
  });
});

describe('UnixWorkloadAttestor: path and sha256 failures', () => {
  it('no executable link: ERR_INTERNAL "unix: path lookup failed" with the pid and the cause', async () => {
    proc.set(103, { uid: 1500, gid: 1500 });
    const e = await refusal(new UnixWorkloadAttestor({ procRoot: proc.root, discoverWorkloadPath: true }).attest(103), 'ERR_INTERNAL');
    assert.equal(e.message, 'unix: path lookup failed');
    assert.deepEqual(e.fields, { pid: 103 });
    assert.equal((e.cause as NodeJS.ErrnoException).code, 'ENOENT');
  });

  it('an executable that cannot be read: ERR_INTERNAL "unix: sha256 digest failed", logged with pid and path', async () => {
    const notAFile = join(proc.root, 'a-directory');
    mkdirSync(notAFile, { recursive: true });
    proc.set(104, { uid: 1500, gid: 1500, exe: notAFile });
    const { log, lines } = capture();
    const e = await refusal(new UnixWorkloadAttestor({ procRoot: proc.root, discoverWorkloadPath: true, logger: log }).attest(104), 'ERR_INTERNAL');
    assert.equal(e.message, 'unix: sha256 digest failed');
    assert.deepEqual(e.fields, { pid: 104 });
    assert.equal((e.cause as NodeJS.ErrnoException).code, 'EISDIR');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.msg, 'unix: cannot compute workload sha256');
    assert.equal(lines[0]?.level, 'warn');
    assert.equal(lines[0]?.pid, 104);
    assert.equal(lines[0]?.path, notAFile);
  });

  it('over the size limit: the error names path, size and limit, and is logged', async () => {
    proc.set(105, { uid: 1500, gid: 1500, exe: bin });
    const { log, lines } = capture();
    const e = await refusal(
      new UnixWorkloadAttestor({ procRoot: proc.root, discoverWorkloadPath: true, workloadSizeLimit: 999, logger: log }).attest(105),
      'ERR_INTERNAL',
    );
    const exe = join(proc.dir(105), 'exe');
    assert.equal(e.message, `unix: sha256 digest: workload ${exe} exceeds size limit (1000 > 999)`);
    assert.deepEqual(e.fields, { path: exe, size: 1000, limit: 999 });
    assert.deepEqual(
      lines.map((l) => [l.msg, l.pid, l.path]),
      [['unix: cannot compute workload sha256', 105, bin]],
    );
    const ok = (await new UnixWorkloadAttestor({ procRoot: proc.root, discoverWorkloadPath: true, workloadSizeLimit: 1000 }).attest(105)).map(formatSelector);
    assert.deepEqual(ok.slice(-2), [`unix:path:${bin}`, `unix:sha256:${BIN_SHA}`]);
  });

  it('aborted while hashing: rejects with the reason, no digest, nothing logged', async () => {
    const fifo = join(proc.root, 'fifo');
    execFileSync('mkfifo', [fifo]);
    proc.set(106, { uid: 1500, gid: 1500, exe: fifo });
    const { log, lines } = capture();
    const ac = new AbortController();
    const reason = new Error('client hung up');
    // Our end of the pipe is opened read-write, which never blocks (a write-only open would wait
    // forever for an attestor that never opens the pipe); the attestor reads to EOF once we close.
    const w = await open(fifo, fsConstants.O_RDWR);
    let settled = false;
    let outcome: Promise<unknown>;
    try {
      outcome = new UnixWorkloadAttestor({ procRoot: proc.root, discoverWorkloadPath: true, logger: log }).attest(106, ac.signal).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      void outcome.then(() => (settled = true));
      // The attestor is hashing once it holds the pipe open too (past every check before it).
      const holders = (): number => readdirSync('/proc/self/fd').filter((fd) => readlinkOr(`/proc/self/fd/${fd}`) === fifo).length;
      for (let i = 0; i < 10_000 && !settled && holders() < 2; i++) await new Promise((r) => setImmediate(r));
      await w.write('first chunk');
      ac.abort(reason);
      await w.write('second chunk');
    } finally {
      await w.close();
    }
    assert.equal(await outcome, reason);
    assert.deepEqual(lines, []);
  });
});

describe('sha256OfFile', () => {
  it('refuses a file that grows past the limit after its size was taken (procfs files report size 0)', async () => {
    const text = 'x'.repeat(5000);
    const path = join(proc.root, 'grows');
    writeFileSync(path, text);
    const before = openFds();
    await assert.rejects(
      sha256OfFile('/proc/self/cmdline', 5),
      (e: unknown) =>
        isZtwimError(e, 'ERR_INTERNAL') &&
        /^unix: sha256 digest: workload \/proc\/self\/cmdline exceeds size limit \(\d+ > 5\)$/.test(e.message) &&
        e.fields.limit === 5,
    );
    assert.equal(openFds(), before, 'the file is closed after a refusal');
    assert.equal(await sha256OfFile(path, 5000), execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]);
    assert.equal(openFds(), before, 'and after a digest');
  });

  it('an aborted signal stops the hashing with its reason', async () => {
    const ac = new AbortController();
    const reason = new Error('stop');
    ac.abort(reason);
    await assert.rejects(sha256OfFile(bin, 0, ac.signal), (e: unknown) => e === reason);
  });
});
