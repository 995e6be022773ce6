// What a refused workload and the agent's log see of the peer tracker's refusals: SPIRE's message
// "workload attestation failed", the check that failed as the cause (a PeerChangedError carrying
// the error of the read that failed), an aborted call rejected with its own reason and not logged,
// a pin that is closed mid-attestation refusing its status to the attestor. Driven through the
// procfs stand-in of testdata/fake-proc.ts.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { createLogger, isZtwimError, type Logger, type ZtwimError } from '@ztwim/core';

import { PeerTracker, type TrackedPeer } from './peer-tracker.ts';
import { FakeProc } from './testdata/fake-proc.ts';
import type { WorkloadAttestor } from './workload-attestor.ts';

const proc = new FakeProc();
after(() => proc.remove());
const exe = join(proc.root, 'exe');
writeFileSync(exe, 'x');
const byPid: WorkloadAttestor = { name: 'pid', attest: async (pid) => [{ type: 'pid', value: String(pid) }] };

let nextPid = 500;
function pin(attestors: readonly WorkloadAttestor[], logger?: Logger): { pid: number; peer: TrackedPeer } {
  const pid = nextPid++;
  proc.set(pid, { uid: 10, gid: 20, exe });
  return { pid, peer: new PeerTracker({ attestors, procRoot: proc.root, ...(logger === undefined ? {} : { logger }) }).trackCred({ pid, uid: 10, gid: 20 }) };
}

async function refusal(p: Promise<unknown>): Promise<ZtwimError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isZtwimError(e, 'ERR_UNAVAILABLE'), String(e));
    assert.equal(e.message, 'workload attestation failed');
    return e;
  }
  assert.fail('not refused');
}

/** The PeerChangedError a refusal carries, and the error of the read under it. */
function changed(e: ZtwimError): { message: string; under: unknown } {
  assert.ok(e.cause instanceof Error);
  assert.equal(e.cause.name, 'PeerChangedError');
  return { message: e.cause.message, under: e.cause.cause };
}

describe('TrackedPeer refusals', () => {
  it('a failed read under each check is kept as the cause of its PeerChangedError', async () => {
    const gone = pin([byPid]);
    proc.vacate(gone.pid);
    const c1 = changed(await refusal(gone.peer.checkAlive()));
    assert.match(c1.message, /^caller exit suspected \(check\): cannot stat /);
    assert.equal((c1.under as NodeJS.ErrnoException).code, 'ENOENT');
    gone.peer.close();

    const noStat = pin([byPid]);
    proc.vacate(noStat.pid);
    proc.set(noStat.pid, { uid: 10, gid: 20, exe });
    proc.unlink(noStat.pid, 'stat');
    const c2 = changed(await refusal(noStat.peer.checkAlive()));
    assert.equal(c2.message, 'caller exit suspected (check): cannot read stat');
    assert.equal((c2.under as NodeJS.ErrnoException).code, 'ENOENT');
    noStat.peer.close();

    const noStatus = pin([byPid]);
    proc.unlink(noStatus.pid, 'status');
    const c3 = changed(await refusal(noStatus.peer.checkAlive()));
    assert.equal(c3.message, 'caller exit suspected (check): cannot read status');
    assert.equal((c3.under as NodeJS.ErrnoException).code, 'ENOENT');
    noStatus.peer.close();
  });

  it('while /proc/<pid> is still the pinned directory, its start time is not read again', async () => {
    const { pid, peer } = pin([byPid]);
    try {
      // Only a new directory under the pid (another process) has its start time compared.
      writeFileSync(join(proc.dir(pid), 'stat'), `${pid} (w) garbage\n`);
      assert.deepEqual(await peer.attest(), [{ type: 'pid', value: String(pid) }]);
    } finally {
      peer.close();
    }
  });

  it('an aborted call rejects with its reason, before or during attestation, and logs nothing', async () => {
    const lines: string[] = [];
    const log = createLogger({ destination: { write: (s: string) => void lines.push(s) } });
    const before = new AbortController();
    const reason = new Error('caller went away');
    before.abort(reason);
    const a = pin([byPid], log);
    await assert.rejects(a.peer.attest(before.signal), (e: unknown) => e === reason);
    a.peer.close();
    const during = new AbortController();
    const aborting: WorkloadAttestor = {
      name: 'aborting',
      attest: async () => {
        during.abort(reason);
        throw new Error('attestor saw the abort');
      },
    };
    const b = pin([aborting], log);
    await assert.rejects(b.peer.attest(during.signal), (e: unknown) => e === reason);
    b.peer.close();
    assert.deepEqual(lines, []);
  });

  it('an attestor that reads the pinned status after the pin was closed is refused "peer is no longer tracked"', async () => {
    let seen: unknown;
    let peer: TrackedPeer | undefined;
    const late: WorkloadAttestor = {
      name: 'late',
      attest: async (_pid, _signal, view) => {
        peer?.close();
        try {
          view?.status();
        } catch (e) {
          seen = e;
        }
        return [];
      },
    };
    peer = pin([late]).peer;
    await refusal(peer.attest());
    assert.ok(seen instanceof Error);
    assert.equal(seen.name, 'PeerChangedError');
    assert.equal(seen.message, 'peer is no longer tracked');
  });

  it('a socket without credentials: the warning carries the error', () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({ destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
    assert.throws(() => new PeerTracker({ attestors: [byPid], logger: log }).track(new Socket()));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.msg, 'cannot read workload peer credentials');
    assert.match(JSON.stringify(lines[0]?.err), /peercred/);
  });
});
