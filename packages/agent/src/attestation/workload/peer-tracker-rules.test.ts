// The peer tracker's pinning rules (SPIRE pkg/common/peertracker, Linux), each driven to one exact
// state through a procfs stand-in (the `procRoot` option): a workload gets selectors only while the
// process it pinned at accept time is still the one under its pid, with the uid/gid and the
// executable it connected with. Each refusal says which check failed and at which stage, and is
// logged with the pid; a refused pin leaves no descriptor open.
import assert from 'node:assert/strict';
import { mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { createLogger, isZtwimError, type Logger, type ZtwimError } from '@ztwim/core';
import { openFds } from '@ztwim/testkit';

import { effectiveId } from './proc-linux.ts';
import { PeerTracker, WORKLOAD_ATTESTATION_FAILED, type TrackedPeer } from './peer-tracker.ts';
import { FakeProc } from './testdata/fake-proc.ts';
import { spawnQuiet } from './testdata/processes.ts';
import type { Selector, WorkloadAttestor } from './workload-attestor.ts';

const proc = new FakeProc();
after(() => proc.remove());
const UID = 1500;
const GID = 1600;
const exeA = join(proc.root, 'exe-a');
const exeB = join(proc.root, 'exe-b');
writeFileSync(exeA, 'a');
writeFileSync(exeB, 'b');
const exeId = (p: string): string => {
  const st = statSync(p, { bigint: true });
  return `${st.dev}:${st.ino}`;
};

function capture(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } }) };
}

/** Reads the pinned status through the view it is given (as the unix attestor does). */
const viewReader: WorkloadAttestor = {
  name: 'view',
  attest: async (pid, _signal, view) => {
    const st = view?.status();
    return [{ type: 'view', value: `${pid}:${st === undefined ? 'none' : effectiveId(st.uids)}` }];
  },
};
const byPid: WorkloadAttestor = { name: 'pid', attest: async (pid) => [{ type: 'pid', value: String(pid) }] };

let nextPid = 300;
function pinned(
  attestors: readonly WorkloadAttestor[] = [byPid],
  startTime = '1000',
): { pid: number; peer: TrackedPeer; lines: Array<Record<string, unknown>> } {
  const pid = nextPid++;
  proc.set(pid, { uid: UID, gid: GID, startTime, exe: exeA });
  const { log, lines } = capture();
  const peer = new PeerTracker({ attestors, procRoot: proc.root, logger: log }).trackCred({ pid, uid: UID, gid: GID });
  return { pid, peer, lines };
}

/** The ERR_UNAVAILABLE "workload attestation failed" a call rejected with, for its cause. */
async function refused(p: Promise<unknown>): Promise<ZtwimError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), String(e));
    assert.equal(e.message, WORKLOAD_ATTESTATION_FAILED);
    return e;
  }
  assert.fail('not refused');
}
function refusedSync(fn: () => unknown): ZtwimError {
  try {
    fn();
  } catch (e) {
    assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), String(e));
    assert.equal(e.message, WORKLOAD_ATTESTATION_FAILED);
    return e;
  }
  assert.fail('not refused');
}
const causeMessage = (e: ZtwimError): string => (e.cause instanceof Error ? e.cause.message : String(e.cause));

describe('PeerTracker.trackCred: pinning the process under procRoot', () => {
  it('snapshots credentials, start time and executable; attestors get the pid and the pinned status, in order', async () => {
    const { pid, peer } = pinned([viewReader, byPid], '987654');
    try {
      assert.deepEqual(peer.snapshot, { cred: { pid, uid: UID, gid: GID }, startTime: '987654', exe: exeId(exeA) });
      assert.ok(Object.isFrozen(peer.snapshot));
      assert.equal(peer.pid, pid);
      assert.equal(peer.closed, false);
      const got: Selector[] = await peer.attest();
      assert.deepEqual(got, [
        { type: 'view', value: `${pid}:${UID}` },
        { type: 'pid', value: String(pid) },
      ]);
      await peer.checkAlive();
    } finally {
      peer.close();
    }
  });

  it('no process under the pid: refused as "caller exited", logged with the pid', () => {
    const { log, lines } = capture();
    const e = refusedSync(() => new PeerTracker({ attestors: [byPid], procRoot: proc.root, logger: log }).trackCred({ pid: 299, uid: UID, gid: GID }));
    assert.deepEqual(e.fields, { pid: 299, reason: 'caller exited' });
    assert.equal((e.cause as NodeJS.ErrnoException).code, 'ENOENT');
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.pid, l.err === undefined]),
      [['warn', 'could not open caller proc directory', 299, false]],
    );
  });

  const mismatches = [
    { name: 'another uid', uid: UID + 1, gid: GID },
    { name: 'another gid', uid: UID, gid: GID + 1 },
  ];
  for (const m of mismatches) {
    it(`a process running with ${m.name} than the socket's peer: refused, nothing left open`, () => {
      const pid = nextPid++;
      proc.set(pid, { uid: m.uid, gid: m.gid, exe: exeA });
      const { log, lines } = capture();
      const before = openFds();
      const e = refusedSync(() => new PeerTracker({ attestors: [byPid], procRoot: proc.root, logger: log }).trackCred({ pid, uid: UID, gid: GID }));
      assert.equal(openFds(), before);
      assert.deepEqual(e.fields, { pid });
      assert.equal(causeMessage(e), `new process detected: uid/gid ${m.uid}/${m.gid} do not match caller ${UID}/${GID}`);
      assert.deepEqual(
        lines.map((l) => [l.level, l.msg, l.pid]),
        [['warn', 'could not pin caller process', pid]],
      );
    });
  }

  it('a start time that cannot be read: refused, nothing left open', () => {
    const pid = nextPid++;
    proc.set(pid, { uid: UID, gid: GID, exe: exeA });
    writeFileSync(join(proc.dir(pid), 'stat'), `${pid} (w) S 1\n`);
    const before = openFds();
    const e = refusedSync(() => new PeerTracker({ attestors: [byPid], procRoot: proc.root }).trackCred({ pid, uid: UID, gid: GID }));
    assert.equal(openFds(), before);
    assert.match(causeMessage(e), /bad stat data/);
  });
});

describe('PeerTracker.track: the socket', () => {
  it('pins the process at the other end (here: this one) and releases the pin when the socket closes', async () => {
    const server = createServer();
    server.listen(join(proc.root, 'track.sock'));
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect(join(proc.root, 'track.sock'));
    const [conn] = await accepted;
    try {
      const peer = new PeerTracker({ attestors: [byPid] }).track(conn);
      assert.deepEqual(peer.snapshot.cred, { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() });
      assert.deepEqual(await peer.attest(), [{ type: 'pid', value: String(process.pid) }]);
      assert.equal(peer.closed, false);
      conn.destroy();
      await once(conn, 'close');
      assert.equal(peer.closed, true);
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('a socket without peer credentials is refused with the cause, and logged', () => {
    const { log, lines } = capture();
    const e = refusedSync(() => new PeerTracker({ attestors: [byPid], logger: log }).track(new Socket()));
    assert.ok(e.cause instanceof Error);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg]),
      [['warn', 'cannot read workload peer credentials']],
    );
  });
});

describe('TrackedPeer: the pinned process must still be the one under its pid', () => {
  it('uid changed: refused at check and after attestation, naming both uid/gid pairs; logged with the pid', async () => {
    const { pid, peer, lines } = pinned();
    try {
      proc.writeStatus(pid, { uid: UID + 7, gid: GID });
      assert.equal(
        causeMessage(await refused(peer.checkAlive())),
        `process credentials changed (check): uid/gid ${UID + 7}/${GID}, caller connected as ${UID}/${GID}`,
      );
      const e = await refused(peer.attest());
      assert.deepEqual(e.fields, { pid });
      assert.equal(causeMessage(e), `process credentials changed (after attestation): uid/gid ${UID + 7}/${GID}, caller connected as ${UID}/${GID}`);
      assert.deepEqual(
        lines.map((l) => [l.level, l.msg, l.pid, l.err === undefined]),
        [
          ['warn', 'workload peer changed', pid, false],
          ['warn', 'workload attestation failed', pid, false],
        ],
      );
    } finally {
      peer.close();
    }
  });

  it('gid alone changed: refused', async () => {
    const { pid, peer } = pinned();
    try {
      proc.writeStatus(pid, { uid: UID, gid: GID + 7 });
      assert.equal(
        causeMessage(await refused(peer.checkAlive())),
        `process credentials changed (check): uid/gid ${UID}/${GID + 7}, caller connected as ${UID}/${GID}`,
      );
    } finally {
      peer.close();
    }
  });

  it('executable replaced: refused, naming both executables', async () => {
    const { pid, peer } = pinned();
    try {
      proc.setExe(pid, exeB);
      assert.equal(
        causeMessage(await refused(peer.attest())),
        `executable replaced (after attestation): ${exeId(exeB)}, caller connected running ${exeId(exeA)}`,
      );
    } finally {
      peer.close();
    }
  });

  it('the pid is free: refused, "caller exit suspected"', async () => {
    const { pid, peer } = pinned();
    try {
      proc.vacate(pid);
      assert.equal(causeMessage(await refused(peer.attest())), `caller exit suspected (after attestation): cannot stat ${proc.dir(pid)}`);
    } finally {
      peer.close();
    }
  });

  it('another process under the pid: its start time decides (another start time refused, the same accepted)', async () => {
    const a = pinned([byPid], '1000');
    try {
      proc.vacate(a.pid);
      proc.set(a.pid, { uid: UID, gid: GID, startTime: '2000', exe: exeA });
      assert.equal(
        causeMessage(await refused(a.peer.attest())),
        'new process detected (after attestation): start time 2000 does not match original caller 1000',
      );
    } finally {
      a.peer.close();
    }
    const b = pinned([byPid], '1000');
    try {
      proc.vacate(b.pid);
      proc.set(b.pid, { uid: UID, gid: GID, startTime: '1000', exe: exeA });
      assert.deepEqual(await b.peer.attest(), [{ type: 'pid', value: String(b.pid) }]);
    } finally {
      b.peer.close();
    }
    const c = pinned([byPid], '1000');
    try {
      proc.vacate(c.pid);
      proc.set(c.pid, { uid: UID, gid: GID, startTime: '1000', exe: exeA });
      proc.unlink(c.pid, 'stat');
      assert.equal(causeMessage(await refused(c.peer.attest())), 'caller exit suspected (after attestation): cannot read stat');
    } finally {
      c.peer.close();
    }
  });

  it("the pinned process's own status cannot be read: refused", async () => {
    const pid = nextPid++;
    proc.set(pid, { uid: UID, gid: GID, exe: exeA });
    const peer = new PeerTracker({ attestors: [byPid], procRoot: proc.root }).trackCred({ pid, uid: UID, gid: GID });
    try {
      proc.unlink(pid, 'status');
      mkdirSync(join(proc.dir(pid), 'status'));
      assert.equal(causeMessage(await refused(peer.checkAlive())), 'caller exit suspected (check): cannot read status');
    } finally {
      peer.close();
    }
  });

  it('an attestor fails: the failure is the cause while the process is there; a vanished process is reported instead', async () => {
    const boom = new Error('attestor failed');
    let vacate = false;
    let pidOf = 0;
    const failing: WorkloadAttestor = {
      name: 'failing',
      attest: async () => {
        if (vacate) proc.vacate(pidOf);
        throw boom;
      },
    };
    const a = pinned([failing]);
    try {
      assert.equal((await refused(a.peer.attest())).cause, boom);
    } finally {
      a.peer.close();
    }
    const b = pinned([failing]);
    pidOf = b.pid;
    vacate = true;
    try {
      assert.equal(causeMessage(await refused(b.peer.attest())), `caller exit suspected (during attestation): cannot stat ${proc.dir(b.pid)}`);
    } finally {
      b.peer.close();
    }
  });

  it('the uid/gid checked after attestation are those of the status the attestors read', async () => {
    let after: (() => void) | undefined;
    const reader: WorkloadAttestor = {
      name: 'reader',
      attest: async (pid, signal, view) => {
        const sels = await viewReader.attest(pid, signal, view);
        after?.();
        return sels;
      },
    };
    const { pid, peer } = pinned([reader]);
    try {
      after = () => proc.writeStatus(pid, { uid: UID + 9, gid: GID });
      assert.deepEqual(await peer.attest(), [{ type: 'view', value: `${pid}:${UID}` }]);
      after = undefined;
      await assert.rejects(peer.checkAlive());
    } finally {
      peer.close();
    }
  });

  it('the pinned process is gone although everything read by pid still matches: refused (its own status read fails)', async () => {
    // The stand-in's status is the real status of a child (root, as this test runs): reads
    // through the kept descriptor fail once that child has exited, as they do for a real pin.
    const child = await spawnQuiet(['/usr/bin/sleep', '30']);
    const pid = nextPid++;
    proc.set(pid, { uid: 0, gid: 0, exe: exeA });
    proc.unlink(pid, 'status');
    symlinkSync(`/proc/${child.pid}/status`, join(proc.dir(pid), 'status'));
    const reader: WorkloadAttestor = {
      name: 'reader',
      attest: async (p, signal, view) => {
        const sels = await viewReader.attest(p, signal, view);
        await child.kill();
        return sels;
      },
    };
    const peer = new PeerTracker({ attestors: [reader], procRoot: proc.root }).trackCred({ pid, uid: 0, gid: 0 });
    try {
      assert.equal(causeMessage(await refused(peer.attest())), 'caller exit suspected (after attestation): cannot read status');
    } finally {
      peer.close();
      await child.kill();
    }
  });

  it('close: idempotent, also before any attestation; afterwards every call is refused', async () => {
    const before = openFds();
    const { peer } = pinned();
    peer.close();
    peer.close();
    assert.equal(peer.closed, true);
    assert.equal(openFds(), before);
    assert.equal(causeMessage(await refused(peer.checkAlive())), 'peer is no longer tracked');
    assert.equal(causeMessage(await refused(peer.attest())), 'peer is no longer tracked');
    const used = pinned([viewReader]);
    await used.peer.attest();
    used.peer.close();
    used.peer.close();
    assert.equal(openFds(), before);
  });
});

describe('PeerTracker: the connections of one process share its pin', () => {
  /** A tracker and a fresh process under procRoot, pinned by a first connection. */
  function firstConnection(startTime = '1000'): { pid: number; tracker: PeerTracker; first: TrackedPeer } {
    const pid = nextPid++;
    proc.set(pid, { uid: UID, gid: GID, startTime, exe: exeA });
    const tracker = new PeerTracker({ attestors: [byPid], procRoot: proc.root });
    return { pid, tracker, first: tracker.trackCred({ pid, uid: UID, gid: GID }) };
  }

  it('a second connection opens no descriptor; each connection is checked on its own; the last close frees the pin', async () => {
    const before = openFds();
    const { pid, tracker, first } = firstConnection('1234');
    await first.attest(); // opens the kept status
    const pinnedFds = openFds();
    assert.equal(pinnedFds, before + 2);
    const second = tracker.trackCred({ pid, uid: UID, gid: GID });
    assert.equal(openFds(), pinnedFds);
    assert.deepEqual(second.snapshot, { cred: { pid, uid: UID, gid: GID }, startTime: '1234', exe: exeId(exeA) });
    assert.deepEqual(await second.attest(), [{ type: 'pid', value: String(pid) }]);
    first.close();
    first.close(); // idempotent: releases its hold once
    assert.equal(first.closed, true);
    assert.equal(causeMessage(await refused(first.attest())), 'peer is no longer tracked');
    assert.equal(second.closed, false);
    assert.equal(openFds(), pinnedFds);
    assert.deepEqual(await second.attest(), [{ type: 'pid', value: String(pid) }]);
    second.close();
    assert.equal(openFds(), before);
    // The pin is gone from the tracker too: the next connection pins the process anew.
    const third = tracker.trackCred({ pid, uid: UID, gid: GID });
    assert.equal(openFds(), before + 1);
    third.close();
    assert.equal(openFds(), before);
  });

  it('another process under the pid: the new connection gets a pin of its own; the old connections stay refused', async () => {
    const before = openFds();
    const { pid, tracker, first } = firstConnection('1000');
    proc.vacate(pid);
    proc.set(pid, { uid: UID, gid: GID, startTime: '2000', exe: exeA });
    const second = tracker.trackCred({ pid, uid: UID, gid: GID });
    assert.equal(second.snapshot.startTime, '2000');
    assert.equal(openFds(), before + 2);
    assert.deepEqual(await second.attest(), [{ type: 'pid', value: String(pid) }]);
    assert.equal(causeMessage(await refused(first.attest())), 'new process detected (after attestation): start time 2000 does not match original caller 1000');
    first.close();
    assert.equal(openFds(), before + 2); // the new pin and its status
    // Closing the old pin left the new one in place: a third connection shares it.
    const third = tracker.trackCred({ pid, uid: UID, gid: GID });
    assert.equal(openFds(), before + 2);
    assert.equal(third.snapshot.startTime, '2000');
    second.close();
    third.close();
    assert.equal(openFds(), before);
  });

  it('the process ran exec between its connections: the new connection starts from the new executable', async () => {
    const { pid, tracker, first } = firstConnection();
    try {
      proc.setExe(pid, exeB);
      const second = tracker.trackCred({ pid, uid: UID, gid: GID });
      try {
        assert.equal(second.snapshot.exe, exeId(exeB));
        assert.deepEqual(await second.attest(), [{ type: 'pid', value: String(pid) }]);
        assert.equal(
          causeMessage(await refused(first.attest())),
          `executable replaced (after attestation): ${exeId(exeB)}, caller connected running ${exeId(exeA)}`,
        );
      } finally {
        second.close();
      }
    } finally {
      first.close();
    }
  });

  const changes = [
    { name: 'the process now runs as another uid', status: { uid: UID + 3, gid: GID }, cred: { uid: UID, gid: GID } },
    { name: 'the process now runs as another gid', status: { uid: UID, gid: GID + 3 }, cred: { uid: UID, gid: GID } },
    { name: "the socket's peer is another uid than the process", status: { uid: UID, gid: GID }, cred: { uid: UID + 4, gid: GID } },
    { name: "the socket's peer is another gid than the process", status: { uid: UID, gid: GID }, cred: { uid: UID, gid: GID + 4 } },
  ];
  for (const c of changes) {
    it(`${c.name}: the shared pin gives the new connection no selectors (checked on its calls), nothing left open`, async () => {
      const before = openFds();
      const { pid, tracker, first } = firstConnection();
      proc.writeStatus(pid, c.status);
      const second = tracker.trackCred({ pid, ...c.cred });
      assert.deepEqual(second.snapshot.cred, { pid, ...c.cred });
      assert.equal(
        causeMessage(await refused(second.attest())),
        `process credentials changed (after attestation): uid/gid ${c.status.uid}/${c.status.gid}, caller connected as ${c.cred.uid}/${c.cred.gid}`,
      );
      second.close();
      first.close();
      assert.equal(openFds(), before);
    });
  }

  it("the pinned process's status can no longer be read: the new connection gets no selectors", async () => {
    const { pid, tracker, first } = firstConnection();
    try {
      proc.unlink(pid, 'status');
      mkdirSync(join(proc.dir(pid), 'status'));
      const second = tracker.trackCred({ pid, uid: UID, gid: GID });
      assert.equal(causeMessage(await refused(second.attest())), 'caller exit suspected (after attestation): cannot read status');
      second.close();
    } finally {
      first.close();
    }
  });

  it('the pid is free (the pinned process is gone): the new connection is refused as "caller exited"', () => {
    const { pid, tracker, first } = firstConnection();
    try {
      proc.vacate(pid);
      const e = refusedSync(() => tracker.trackCred({ pid, uid: UID, gid: GID }));
      assert.deepEqual(e.fields, { pid, reason: 'caller exited' });
    } finally {
      first.close();
    }
  });

  it('a pin made with a bare descriptor (TrackedPeer constructor) is closed by its one connection', () => {
    const pid = nextPid++;
    proc.set(pid, { uid: UID, gid: GID, exe: exeA });
    const before = openFds();
    const peer = new PeerTracker({ attestors: [byPid], procRoot: proc.root }).trackCred({ pid, uid: UID, gid: GID });
    peer.close();
    assert.equal(openFds(), before);
  });
});
