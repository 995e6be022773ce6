import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';

import { AS_NOBODY, sha256File, spawnQuiet, spawnReady, startUdsServer, spawnNodeClient, type UdsServer } from './testdata/processes.ts';
import { parseProcStatus } from './proc-linux.ts';
import { UnixWorkloadAttestor } from './unix.ts';
import { formatSelector, type Selector } from './workload-attestor.ts';

const show = (sels: readonly Selector[]): string[] => sels.map(formatSelector);

let dir: string;
let uds: UdsServer;
let passwdFile: string;
let groupFile: string;
let sleepCopy: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ztwim-unix-'));
  passwdFile = join(dir, 'passwd');
  groupFile = join(dir, 'group');
  writeFileSync(
    passwdFile,
    ['# test users', 'root:x:0:0:root:/root:/bin/sh', 'broken-line', 'nobody-test:x:65534:65534::/:/bin/false', 'dup:x:65534:65534::/:/bin/false', ''].join(
      '\n',
    ),
  );
  writeFileSync(groupFile, ['root:x:0:', 'users-test:x:100:nobody-test', 'nogroup-test:x:65534:', ''].join('\n'));
  sleepCopy = join(dir, 'workload-bin');
  copyFileSync('/usr/bin/sleep', sleepCopy);
  uds = await startUdsServer();
});

after(async () => {
  await uds.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The child's `Groups:` line, independently of the attestor's parser. */
function statusGroups(pid: number): string[] {
  const line =
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Groups:')) ?? 'Groups:';
  return line
    .slice(7)
    .trim()
    .split(/\s+/)
    .filter((g) => g !== '');
}

describe('UnixWorkloadAttestor: identity selectors', () => {
  it('describes a child running as the current user, names from /etc/passwd and /etc/group', async () => {
    const c = await spawnNodeClient(uds.path);
    try {
      await uds.nextConnection().then((s) => s.destroy());
      const got = await new UnixWorkloadAttestor().attest(c.pid);
      const groupName = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
      const expected = [
        `unix:uid:${process.getuid?.()}`,
        `unix:user:${userInfo().username}`,
        `unix:gid:${process.getgid?.()}`,
        `unix:group:${groupName}`,
        ...statusGroups(c.pid).flatMap((g) => {
          const name = execFileSync('getent', ['group', g], { encoding: 'utf8' }).split(':')[0];
          return [`unix:supplementary_gid:${g}`, `unix:supplementary_group:${name}`];
        }),
      ];
      assert.deepEqual(show(got), expected);
      assert.ok(got.every((s) => s.type === 'unix'));
    } finally {
      await c.stop();
    }
  });

  const cases: ReadonlyArray<{ name: string; wrapper: readonly string[]; expected: readonly string[] }> = [
    {
      name: 'nobody, no supplementary groups',
      wrapper: AS_NOBODY,
      expected: ['unix:uid:65534', 'unix:user:nobody-test', 'unix:gid:65534', 'unix:group:nogroup-test'],
    },
    {
      name: 'nobody with supplementary groups, one without a name',
      wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--groups=100,4242'],
      expected: [
        'unix:uid:65534',
        'unix:user:nobody-test',
        'unix:gid:65534',
        'unix:group:nogroup-test',
        'unix:supplementary_gid:100',
        'unix:supplementary_group:users-test',
        'unix:supplementary_gid:4242',
      ],
    },
    {
      name: 'unknown uid and gid: no user or group selector',
      wrapper: ['setpriv', '--reuid=54321', '--regid=54322', '--clear-groups'],
      expected: ['unix:uid:54321', 'unix:gid:54322'],
    },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const c = await spawnNodeClient(uds.path, tc.wrapper);
      try {
        await uds.nextConnection().then((s) => s.destroy());
        const got = await new UnixWorkloadAttestor({ passwdFile, groupFile }).attest(c.pid);
        assert.deepEqual(show(got), tc.expected);
      } finally {
        await c.stop();
      }
    });
  }

  it('takes uid, gid and groups from the pinned process view when the peer tracker gives one', async () => {
    const status = parseProcStatus('Name:\tx\nUid:\t4242\t4243\t4243\t4243\nGid:\t77\t78\t78\t78\nGroups:\t5 6\n');
    let reads = 0;
    const got = (await new UnixWorkloadAttestor().attest(process.pid, undefined, { status: () => (reads++, status) })).map(formatSelector);
    assert.equal(reads, 1);
    for (const want of ['unix:uid:4243', 'unix:gid:78', 'unix:supplementary_gid:5', 'unix:supplementary_gid:6'])
      assert.ok(got.includes(want), `${want} in ${got.join(' ')}`);
    assert.ok(!got.includes(`unix:uid:${process.getuid?.()}`), 'not read by pid');
  });

  it('uses the effective uid, as SPIRE does', async () => {
    // setpriv --euid leaves the real uid at 0.
    const c = await spawnReady([
      'setpriv',
      '--euid=65534',
      '--egid=65534',
      '--clear-groups',
      process.execPath,
      '-e',
      'console.log("up"); process.stdin.resume()',
    ]);
    try {
      const got = await new UnixWorkloadAttestor({ passwdFile, groupFile }).attest(c.pid);
      assert.deepEqual(show(got).slice(0, 4), ['unix:uid:65534', 'unix:user:nobody-test', 'unix:gid:65534', 'unix:group:nogroup-test']);
    } finally {
      await c.stop();
    }
  });
});

describe('UnixWorkloadAttestor: path and sha256', () => {
  it('adds path and the sha256 of the running executable', async () => {
    const c = await spawnQuiet([sleepCopy, '30']);
    try {
      const got = await new UnixWorkloadAttestor({ discoverWorkloadPath: true, passwdFile, groupFile }).attest(c.pid);
      const tail = show(got).slice(-2);
      assert.deepEqual(tail, [`unix:path:${sleepCopy}`, `unix:sha256:${sha256File('/usr/bin/sleep')}`]);
    } finally {
      await c.stop();
    }
  });

  const size = (): number => statSync('/usr/bin/sleep').size;
  const limitCases: ReadonlyArray<{ name: string; limit: () => number; sha: boolean; error?: RegExp }> = [
    { name: 'no limit (0)', limit: () => 0, sha: true },
    { name: 'limit equal to the size', limit: size, sha: true },
    { name: 'negative limit: never hash', limit: () => -1, sha: false },
    { name: 'limit below the size: attestation fails', limit: () => size() - 1, sha: false, error: /exceeds size limit \(\d+ > \d+\)$/ },
  ];
  for (const tc of limitCases) {
    it(`workloadSizeLimit: ${tc.name}`, async () => {
      const c = await spawnQuiet([sleepCopy, '30']);
      try {
        const attestor = new UnixWorkloadAttestor({ discoverWorkloadPath: true, workloadSizeLimit: tc.limit(), passwdFile, groupFile });
        if (tc.error !== undefined) {
          const re = tc.error;
          await assert.rejects(attestor.attest(c.pid), (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && re.test(e.message));
          return;
        }
        const got = show(await attestor.attest(c.pid));
        assert.ok(got.includes(`unix:path:${sleepCopy}`));
        assert.equal(
          got.some((s) => s.startsWith('unix:sha256:')),
          tc.sha,
        );
      } finally {
        await c.stop();
      }
    });
  }

  it('without discoverWorkloadPath: neither path nor sha256', async () => {
    const c = await spawnQuiet([sleepCopy, '30']);
    try {
      const got = show(await new UnixWorkloadAttestor({ passwdFile, groupFile }).attest(c.pid));
      assert.ok(!got.some((s) => s.startsWith('unix:path:') || s.startsWith('unix:sha256:')), got.join(' '));
    } finally {
      await c.stop();
    }
  });

  it('hashes the file the process runs, not what now sits at its path', async () => {
    const bin = join(dir, 'replaced-bin');
    copyFileSync('/usr/bin/sleep', bin);
    const c = await spawnQuiet([bin, '30']);
    try {
      const other = join(dir, 'other-bin');
      writeFileSync(other, '#!/bin/sh\necho impostor\n', { mode: 0o755 });
      renameSync(other, bin);
      const got = show(await new UnixWorkloadAttestor({ discoverWorkloadPath: true, passwdFile, groupFile }).attest(c.pid));
      assert.deepEqual(got.slice(-2), [`unix:path:${bin} (deleted)`, `unix:sha256:${sha256File('/usr/bin/sleep')}`]);
    } finally {
      await c.stop();
    }
  });
});

describe('UnixWorkloadAttestor: failures', () => {
  it('a pid with no process → ERR_INTERNAL', async () => {
    const c = await spawnQuiet(['/usr/bin/true']);
    await c.exited;
    await assert.rejects(new UnixWorkloadAttestor().attest(c.pid), (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && /failed to get process/.test(e.message));
  });

  it('rejects a bad pid', async () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(new UnixWorkloadAttestor().attest(pid), (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT'));
    }
  });

  it('an aborted signal rejects with its reason', async () => {
    const ac = new AbortController();
    const reason = new Error('caller went away');
    ac.abort(reason);
    await assert.rejects(new UnixWorkloadAttestor().attest(process.pid, ac.signal), (e: unknown) => e === reason);
  });
});
