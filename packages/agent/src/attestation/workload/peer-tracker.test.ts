import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync, writeFileSync, openSync, constants as fsConstants } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { isZtwimError, type ZtwimError } from '@ztwim/core';

import { PeerTracker, TrackedPeer, WORKLOAD_ATTESTATION_FAILED } from './peer-tracker.ts';
import { AS_NOBODY, sha256File, spawnNodeClient, spawnPerlClient, spawnReady, startUdsServer, type UdsServer } from './testdata/processes.ts';
import { UnixWorkloadAttestor } from './unix.ts';
import { formatSelector, type Selector, type WorkloadAttestor } from './workload-attestor.ts';

const show = (sels: readonly Selector[]): string[] => sels.map(formatSelector);

let uds: UdsServer;
before(async () => {
  uds = await startUdsServer();
});
after(async () => {
  await uds.close();
});

const unix = new UnixWorkloadAttestor();
const tracker = new PeerTracker({ attestors: [unix] });

/** Asserts ERR_UNAVAILABLE "workload attestation failed" whose cause message matches `why`. */
function unavailableBecause(why: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), `expected ERR_UNAVAILABLE, got ${String(e)}`);
    assert.equal(e.message, WORKLOAD_ATTESTATION_FAILED);
    const cause = (e as ZtwimError).cause;
    assert.ok(cause instanceof Error, 'cause is an Error');
    assert.match(cause.message, why);
    return true;
  };
}

/** Polls until `cond` holds: waiting on another process, not on time. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('PeerTracker: attesting the connected process', () => {
  const cases: ReadonlyArray<{ name: string; wrapper: readonly string[]; uid: number }> = [
    { name: 'same user', wrapper: [], uid: process.getuid?.() ?? 0 },
    { name: 'nobody', wrapper: AS_NOBODY, uid: 65534 },
  ];
  for (const tc of cases) {
    it(`pins the peer at accept and returns its selectors (${tc.name})`, async () => {
      const c = await spawnNodeClient(uds.path, tc.wrapper);
      const conn = await uds.nextConnection();
      try {
        const peer = tracker.track(conn);
        assert.deepEqual(peer.snapshot.cred, { pid: c.info.pid, uid: c.info.uid, gid: c.info.gid });
        assert.equal(peer.snapshot.cred.uid, tc.uid);
        const got = show(await peer.attest());
        assert.ok(got.includes(`unix:uid:${tc.uid}`), got.join(' '));
        assert.ok(got.includes(`unix:gid:${c.info.gid}`), got.join(' '));
        await peer.checkAlive();
      } finally {
        conn.destroy();
        await c.stop();
      }
    });
  }

  it('path and sha256 come from the connected process', async () => {
    const c = await spawnPerlClient(uds.path);
    const conn = await uds.nextConnection();
    try {
      const peer = new PeerTracker({ attestors: [new UnixWorkloadAttestor({ discoverWorkloadPath: true })] }).track(conn);
      assert.equal(peer.pid, c.pid);
      const got = show(await peer.attest());
      const exe = readlinkSync(`/proc/${c.pid}/exe`);
      assert.deepEqual(got.slice(-2), [`unix:path:${exe}`, `unix:sha256:${sha256File(exe)}`]);
    } finally {
      conn.destroy();
      await c.kill();
    }
  });

  it('concatenates the selectors of all attestors in order', async () => {
    const extra: WorkloadAttestor = { name: 'fake', attest: async (pid) => [{ type: 'fake', value: `pid:${pid}` }] };
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    try {
      const got = await new PeerTracker({ attestors: [unix, extra] }).track(conn).attest();
      assert.equal(got[0]?.value, `uid:${c.info.uid}`);
      assert.deepEqual(got.at(-1), { type: 'fake', value: `pid:${c.pid}` });
    } finally {
      conn.destroy();
      await c.stop();
    }
  });

  it('closes the pin when the connection closes', async () => {
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    const peer = tracker.track(conn);
    assert.equal(peer.closed, false);
    const closed = new Promise((r) => conn.once('close', r));
    conn.destroy();
    await closed;
    assert.equal(peer.closed, true);
    await assert.rejects(peer.attest(), unavailableBecause(/no longer tracked/));
    await c.stop();
  });
});

describe('PeerTracker: never the selectors of another process', () => {
  it('peer exited after connect, before tracking → track fails', async () => {
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    c.send('exit');
    await c.exited;
    assert.throws(() => tracker.track(conn), unavailableBecause(/ENOENT|no such file/i));
    conn.destroy();
  });

  it('peer exited after tracking → attestation fails', async () => {
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    const peer = tracker.track(conn);
    c.send('exit');
    await c.exited;
    await assert.rejects(peer.attest(), unavailableBecause(/caller exit suspected/));
    await assert.rejects(peer.checkAlive(), unavailableBecause(/caller exit suspected/));
    conn.destroy();
  });

  it('peer exits while the attestors run → attestation fails although they returned selectors', async () => {
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    const killer: WorkloadAttestor = {
      name: 'killer',
      attest: async (pid) => {
        const sels = await unix.attest(pid);
        await c.kill();
        return sels;
      },
    };
    const peer = new PeerTracker({ attestors: [killer] }).track(conn);
    await assert.rejects(peer.attest(), unavailableBecause(/caller exit suspected/));
    conn.destroy();
  });

  it('pid reused by a new process (real reuse through ns_last_pid) → attestation fails', async () => {
    const a = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    const peer = tracker.track(conn);
    a.send('exit');
    await a.exited;
    // Make the kernel hand A's pid to the next process we fork. Other processes on the host may
    // fork in between, so retry until B gets the pid.
    let b;
    for (let attempt = 0; attempt < 50 && b === undefined; attempt++) {
      writeFileSync('/proc/sys/kernel/ns_last_pid', String(a.pid - 1));
      const candidate = await spawnReady([process.execPath, '-e', 'console.log("up"); process.stdin.resume()']);
      if (candidate.pid === a.pid) b = candidate;
      else await candidate.stop();
    }
    assert.ok(b !== undefined, `could not get pid ${a.pid} reused`);
    try {
      // B runs node as the same user: by pid alone it would look like the caller.
      assert.ok(show(await unix.attest(a.pid)).includes(`unix:uid:${a.info.uid}`));
      await assert.rejects(peer.attest(), unavailableBecause(/caller exit suspected|new process detected/));
    } finally {
      conn.destroy();
      await b.stop();
    }
  });

  it('close releases the pin and the procfs handles it keeps', async () => {
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    try {
      const open = (): number => readdirSync('/proc/self/fd').length;
      const before = open();
      const peer = tracker.track(conn);
      assert.ok((await peer.attest()).length > 0);
      assert.ok((await peer.attest()).length > 0);
      assert.equal(open(), before + 2, 'the /proc/<pid> pin and its status fd, nothing more');
      peer.close();
      assert.equal(open(), before);
      await assert.rejects(peer.attest(), unavailableBecause(/no longer tracked/));
    } finally {
      conn.destroy();
      await c.stop();
    }
  });

  it('start time differs from the one seen at connect (pid reuse simulation) → fails', async () => {
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    try {
      const real = tracker.track(conn);
      // A pin on another live process: `/proc/<pid>` is not the pinned directory, so the start
      // time read by pid is compared with the (forged) connect-time one.
      const other = await spawnNodeClient(uds.path);
      const otherConn = await uds.nextConnection();
      otherConn.destroy();
      const fd = openSync(`/proc/${other.pid}`, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
      const stale = new TrackedPeer({ ...real.snapshot, startTime: String(BigInt(real.snapshot.startTime) + 1n) }, fd, { attestors: [unix] });
      await assert.rejects(stale.attest(), unavailableBecause(/new process detected .*start time/));
      stale.close();
      await other.stop();
      // The genuine snapshot of the same process still attests.
      assert.ok((await real.attest()).length > 0);
    } finally {
      conn.destroy();
      await c.stop();
    }
  });

  it('peer changed uid after connecting → fails', async () => {
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    try {
      const peer = tracker.track(conn);
      c.send('setuid 65534');
      await until(() => /Uid:\s+65534/.test(readFileSync(`/proc/${c.pid}/status`, 'utf8')), 'setuid');
      await assert.rejects(peer.attest(), unavailableBecause(/credentials changed/));
    } finally {
      conn.destroy();
      await c.stop();
    }
  });

  it('executable replaced (exec) between connect and attestation → fails', async () => {
    const c = await spawnPerlClient(uds.path);
    const conn = await uds.nextConnection();
    try {
      const peer = new PeerTracker({ attestors: [new UnixWorkloadAttestor({ discoverWorkloadPath: true })] }).track(conn);
      c.send('exec');
      await until(() => readlinkSync(`/proc/${c.pid}/exe`) === '/usr/bin/sleep', 'exec');
      // Same pid, same start time, same uid, and it still holds the socket: only the exe differs.
      await assert.rejects(peer.attest(), unavailableBecause(/executable replaced/));
    } finally {
      conn.destroy();
      await c.kill();
    }
  });

  it('an aborted signal rejects with its reason, not ERR_UNAVAILABLE', async () => {
    const c = await spawnNodeClient(uds.path);
    const conn = await uds.nextConnection();
    try {
      const ac = new AbortController();
      const reason = new Error('client cancelled');
      ac.abort(reason);
      await assert.rejects(tracker.track(conn).attest(ac.signal), (e: unknown) => e === reason);
    } finally {
      conn.destroy();
      await c.stop();
    }
  });
});
