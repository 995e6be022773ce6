// The shared per-process pin (ProcessPin) on its own and through TrackedPeer: when its
// descriptors are closed, what a released pin still answers, a TrackedPeer made from a bare
// /proc/<pid> fd, and a closed connection's view while the process stays pinned for another.
// Descriptors are counted through /proc/self/fd; the processes are the procfs stand-in's.
import assert from 'node:assert/strict';
import { openSync, constants as fsConstants, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';
import { openFds } from '@ztwim/testkit';

import { exeIdentitySync } from './proc-linux.ts';
import { PeerTracker, ProcessPin, TrackedPeer } from './peer-tracker.ts';
import { FakeProc } from './testdata/fake-proc.ts';
import type { WorkloadAttestor } from './workload-attestor.ts';

const proc = new FakeProc();
after(() => proc.remove());
const UID = 1700;
const GID = 1800;
const exe = join(proc.root, 'exe');
writeFileSync(exe, 'x');
const byPid: WorkloadAttestor = { name: 'pid', attest: async (pid) => [{ type: 'pid', value: String(pid) }] };

let nextPid = 700;
function newProcess(startTime = '4000'): number {
  const pid = nextPid++;
  proc.set(pid, { uid: UID, gid: GID, startTime, exe });
  return pid;
}
const openDir = (pid: number): number => openSync(proc.dir(pid), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
const messageOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  return 'no error';
};

describe('ProcessPin: released by its last holder', () => {
  it('closes both descriptors once, reports closed, refuses status reads, and calls onClosed once', () => {
    const pid = newProcess();
    const before = openFds();
    const closedPins: ProcessPin[] = [];
    const pin = new ProcessPin(pid, '4000', openDir(pid), (p) => closedPins.push(p));
    assert.match(pin.statusText(), new RegExp(`Uid:\\s+${UID}\\b`));
    assert.equal(openFds(), before + 2);
    pin.retain();
    pin.release();
    assert.equal(pin.closed, false);
    assert.equal(openFds(), before + 2);
    pin.release();
    assert.equal(pin.closed, true);
    assert.equal(openFds(), before);
    assert.deepEqual(closedPins, [pin]);
    assert.equal(
      messageOf(() => pin.statusText()),
      'peer is no longer tracked',
    );
    pin.release(); // one release too many: nothing left to close
    assert.equal(pin.closed, true);
    assert.deepEqual(closedPins, [pin]);
    assert.equal(openFds(), before);
  });

  it('a pin without onClosed (a TrackedPeer given a bare fd) releases without one', () => {
    const pid = newProcess();
    const before = openFds();
    const pin = new ProcessPin(pid, '4000', openDir(pid));
    pin.release();
    assert.equal(pin.closed, true);
    assert.equal(openFds(), before);
  });
});

describe('TrackedPeer: made from an open /proc/<pid> fd', () => {
  it('pins that process itself: attests, and its close closes the fd', async () => {
    const pid = newProcess('4100');
    const before = openFds();
    const snapshot = Object.freeze({ cred: { pid, uid: UID, gid: GID }, startTime: '4100', exe: exeIdentitySync(proc.dir(pid)) });
    const peer = new TrackedPeer(snapshot, openDir(pid), { attestors: [byPid], procRoot: proc.root });
    assert.equal(peer.closed, false);
    assert.deepEqual(await peer.attest(), [{ type: 'pid', value: String(pid) }]);
    assert.equal(openFds(), before + 2);
    peer.close();
    assert.equal(peer.closed, true);
    assert.equal(openFds(), before);
  });
});

describe('TrackedPeer: a closed connection of a process still pinned for another', () => {
  it("its attestors' status view refuses, though the shared pin stays open", async () => {
    const pid = newProcess('4200');
    const seen: string[] = [];
    let closing: TrackedPeer | undefined;
    const closesFirst: WorkloadAttestor = {
      name: 'closes-first',
      attest: async (_pid, _signal, view) => {
        closing?.close();
        seen.push(messageOf(() => view?.status()));
        return [];
      },
    };
    const tracker = new PeerTracker({ attestors: [closesFirst], procRoot: proc.root });
    const other = tracker.trackCred({ pid, uid: UID, gid: GID });
    const before = openFds();
    closing = tracker.trackCred({ pid, uid: UID, gid: GID });
    assert.equal(openFds(), before); // shares the pin
    await assert.rejects(closing.attest(), (e: unknown) => isZtwimError(e, 'ERR_UNAVAILABLE'));
    assert.deepEqual(seen, ['peer is no longer tracked']);
    assert.equal(other.closed, false);
    closing = undefined;
    assert.deepEqual(await other.attest(), []);
    assert.deepEqual(seen, ['peer is no longer tracked', 'no error']);
    other.close();
  });
});
