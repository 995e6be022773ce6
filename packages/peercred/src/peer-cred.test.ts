import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { acceptPendingConnections, isPeerCredError, peerCredOf, peerCredOfFd, peerGroupsOf, socketFd } from './index.ts';

// A child that connects to argv[1], reports who it is, and stays connected until its stdin closes.
const CHILD = `
const c = require('node:net').connect(process.argv[1]);
c.on('connect', () => process.stdout.write(JSON.stringify({
  pid: process.pid, uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(),
}) + '\\n'));
c.on('error', (e) => { process.stderr.write(String(e)); process.exit(3); });
process.stdin.on('end', () => process.exit(0)).resume();
`;

interface ChildInfo {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

interface Connected {
  readonly child: ChildProcess;
  readonly info: ChildInfo;
  readonly conn: Socket;
}

let dir: string;
let sockPath: string;
let server: Server;
const pending: Array<(s: Socket) => void> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ztwim-peercred-'));
  chmodSync(dir, 0o755); // children running as nobody must reach the socket
  sockPath = join(dir, 'peer.sock');
  // Never read: the peer's EOF must not tear our end down before we look at it.
  server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    const next = pending.shift();
    if (next === undefined) s.destroy();
    else next(s);
  });
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  chmodSync(sockPath, 0o777);
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

/** Spawns `node -e CHILD` (optionally under setpriv) and waits for both its report and its connection. */
async function connectChild(wrapper: readonly string[] = []): Promise<Connected> {
  const connP = new Promise<Socket>((resolve) => pending.push(resolve));
  const argv = [...wrapper, process.execPath, '-e', CHILD, sockPath];
  const [cmd, ...args] = argv;
  assert.ok(cmd !== undefined);
  const child = spawn(cmd, args, { cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] });
  const infoP = new Promise<ChildInfo>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as ChildInfo);
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`child exited early (${code}): ${err}`)));
  });
  const [info, conn] = await Promise.all([infoP, connP]);
  return { child, info, conn };
}

/** The `Groups:` line of /proc/<pid>/status, sorted: an independent view of the supplementary groups. */
function procGroups(pid: number): number[] {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Groups:'));
  assert.ok(line !== undefined);
  return line
    .slice('Groups:'.length)
    .trim()
    .split(/\s+/)
    .filter((g) => g !== '')
    .map(Number)
    .sort((a, b) => a - b);
}

async function release(c: Connected): Promise<void> {
  const exited = new Promise<void>((resolve) => c.child.once('exit', () => resolve()));
  c.child.stdin?.end();
  await exited;
  c.conn.destroy();
}

describe('peerCredOf', () => {
  const cases: ReadonlyArray<{ name: string; wrapper: readonly string[]; uid?: number; groups?: readonly number[] }> = [
    { name: 'same user as the server', wrapper: [] },
    {
      name: 'nobody via setpriv',
      wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      uid: 65534,
      groups: [],
    },
    {
      name: 'nobody with supplementary groups',
      wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--groups=100,4242'],
      uid: 65534,
      groups: [100, 4242],
    },
  ];
  for (const tc of cases) {
    it(`reports the child's pid, uid and gid (${tc.name})`, async () => {
      const c = await connectChild(tc.wrapper);
      try {
        const cred = peerCredOf(c.conn);
        assert.deepEqual(cred, { pid: c.info.pid, uid: c.info.uid, gid: c.info.gid });
        assert.notEqual(cred.pid, process.pid);
        if (tc.uid !== undefined) assert.equal(cred.uid, tc.uid);
        const groups = [...peerGroupsOf(c.conn)].sort((a, b) => a - b);
        assert.deepEqual(groups, procGroups(c.info.pid));
        if (tc.groups !== undefined) assert.deepEqual(groups, tc.groups);
      } finally {
        await release(c);
      }
    });
  }

  it('keeps reporting the connect-time pid after the peer exits', async () => {
    const c = await connectChild();
    const exited = new Promise<void>((resolve) => c.child.once('exit', () => resolve()));
    c.child.stdin?.end();
    await exited;
    assert.deepEqual(peerCredOf(c.conn), { pid: c.info.pid, uid: c.info.uid, gid: c.info.gid });
    c.conn.destroy();
  });
});

describe('errors', () => {
  it('a destroyed socket has no fd', async () => {
    const c = await connectChild();
    await release(c);
    assert.throws(
      () => peerCredOf(c.conn),
      (e: unknown) => isPeerCredError(e, 'ERR_PEERCRED_NO_FD'),
    );
    assert.throws(
      () => socketFd(c.conn),
      (e: unknown) => isPeerCredError(e, 'ERR_PEERCRED_NO_FD'),
    );
  });

  const fdCases: ReadonlyArray<{ name: string; fd: () => number; code: string; errno?: string }> = [
    { name: 'a regular file', fd: () => openSync(process.execPath, 'r'), code: 'ERR_PEERCRED_SYSCALL', errno: 'ENOTSOCK' },
    {
      name: 'a closed fd',
      fd: () => {
        const fd = openSync(process.execPath, 'r');
        closeSync(fd);
        return fd;
      },
      code: 'ERR_PEERCRED_SYSCALL',
      errno: 'EBADF',
    },
    { name: 'a negative fd', fd: () => -1, code: 'ERR_PEERCRED_NO_FD' },
  ];
  for (const tc of fdCases) {
    it(`rejects ${tc.name}`, () => {
      const fd = tc.fd();
      try {
        assert.throws(
          () => peerCredOfFd(fd),
          (e: unknown) => {
            assert.ok(isPeerCredError(e), String(e));
            assert.equal(e.code, tc.code);
            assert.equal(e.errno, tc.errno);
            if (tc.errno !== undefined) assert.match(e.message, /^peercred: getsockopt\(SO_PEERCRED\): /);
            return true;
          },
        );
      } finally {
        if (tc.code === 'ERR_PEERCRED_SYSCALL' && tc.errno === 'ENOTSOCK') closeSync(fd);
      }
    });
  }
});

describe('acceptPendingConnections', () => {
  it('takes the connections waiting in the listen queue at once, up to max, then none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-peercred-accept-'));
    const path = join(dir, 's.sock');
    // A server whose own accepts never run: every connection below stays in the kernel's queue
    // until acceptPendingConnections takes it, synchronously, in this very turn.
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const clients: Socket[] = [];
    try {
      for (let i = 0; i < 5; i++) clients.push(new Socket().connect(path));
      // connect() on a Unix socket completes in the call: all five are queued now.
      const first = acceptPendingConnections(fd, 3);
      const rest = acceptPendingConnections(fd, 10);
      assert.equal(first.length, 3);
      assert.equal(rest.length, 2);
      assert.deepEqual(acceptPendingConnections(fd, 10), []);
      for (const c of [...first, ...rest]) {
        assert.equal(peerCredOfFd(c).pid, process.pid, 'each is a connected socket from this process');
        closeSync(c);
      }
    } finally {
      for (const c of clients) c.destroy();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a negative fd', () => {
    assert.throws(
      () => acceptPendingConnections(-1, 1),
      (e: unknown) => isPeerCredError(e) && e.code === 'ERR_PEERCRED_NO_FD',
    );
  });
});
