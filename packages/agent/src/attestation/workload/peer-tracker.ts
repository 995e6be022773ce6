// Binds a Workload API connection to the one process that opened it (SPIRE
// pkg/common/peertracker, Linux). At accept time we take the kernel's SO_PEERCRED, pin the
// process by opening its /proc/<pid> directory and record its start time and executable; after
// attestation we check that the very same process is still there, unchanged, so the selectors
// can never be those of a process that merely inherited the pid.
import { closeSync, fstatSync, openSync, statSync, constants as fsConstants } from 'node:fs';
import type { Socket } from 'node:net';

import { ZtwimError, silentLogger, type Logger } from '@ztwim/core';
import { peerCredOf, type PeerCred } from '@ztwim/peercred';

import { effectiveId, exeIdentitySync, parseProcStatus, preadProcFileSync, readProcStatusSync, readStartTimeSync, type ProcStatus } from './proc-linux.ts';
import type { PinnedProcess, Selector, WorkloadAttestor } from './workload-attestor.ts';

export const WORKLOAD_ATTESTATION_FAILED = 'workload attestation failed';

export interface PeerTrackerConfig {
  /** Run in parallel for each attestation; their selectors are concatenated in this order. */
  readonly attestors: readonly WorkloadAttestor[];
  /** procfs mount; default `/proc`. */
  readonly procRoot?: string;
  readonly logger?: Logger;
}

/** What we knew about the peer process right after accept. */
export interface PeerSnapshot {
  readonly cred: PeerCred;
  /** `starttime` from /proc/<pid>/stat (clock ticks since boot). */
  readonly startTime: string;
  /** `dev:ino` of /proc/<pid>/exe, or `unavailable:<errno>`. */
  readonly exe: string;
}

function failed(pid: number, cause: unknown, reason?: string): ZtwimError {
  return new ZtwimError('ERR_UNAVAILABLE', WORKLOAD_ATTESTATION_FAILED, {
    cause,
    fields: reason === undefined ? { pid } : { pid, reason },
  });
}

class PeerChangedError extends Error {
  override readonly name = 'PeerChangedError';
}

/**
 * The open `/proc/<pid>` directory of one process (and its `status`, opened on first use), shared
 * by every connection that process opened while it lives: a workload that opens 1,000 connections
 * is pinned once, not 1,000 times (a pin costs four opens, and kept one or two descriptors per
 * connection). Closed when the last connection using it closes.
 */
export class ProcessPin {
  readonly pid: number;
  /** `starttime` of the pinned process, read once when it was pinned. */
  readonly startTime: string;
  /** Inode of the pinned directory (see TrackedPeer's #verifySame). */
  readonly ino: number;
  #dirFd: number;
  /** `status` of the pinned process, opened on first use (-1: not open). */
  #statusFd = -1;
  #refs = 1;
  readonly #onClosed: ((pin: ProcessPin) => void) | undefined;

  /** Takes ownership of `dirFd`. */
  constructor(pid: number, startTime: string, dirFd: number, onClosed?: (pin: ProcessPin) => void) {
    this.pid = pid;
    this.startTime = startTime;
    this.#dirFd = dirFd;
    this.ino = fstatSync(dirFd).ino;
    this.#onClosed = onClosed;
  }

  get closed(): boolean {
    return this.#dirFd < 0;
  }

  /** One more connection uses this pin. */
  retain(): void {
    this.#refs++;
  }

  /** The pinned process's status text (one pread on the kept fd); throws once it is gone. */
  statusText(): string {
    if (this.#dirFd < 0) throw new PeerChangedError('peer is no longer tracked');
    if (this.#statusFd < 0) this.#statusFd = openSync(`/proc/self/fd/${this.#dirFd}/status`, 'r');
    return preadProcFileSync(this.#statusFd);
  }

  /** A connection using this pin closed; the last one closes the descriptors. */
  release(): void {
    if (this.#dirFd < 0 || --this.#refs > 0) return;
    const fd = this.#dirFd;
    this.#dirFd = -1;
    closeSync(fd);
    if (this.#statusFd >= 0) closeSync(this.#statusFd);
    this.#statusFd = -1;
    this.#onClosed?.(this);
  }
}

/** A connection's peer, pinned at accept time. Close it when the connection closes. */
export class TrackedPeer {
  readonly snapshot: PeerSnapshot;
  readonly #attestors: readonly WorkloadAttestor[];
  readonly #procRoot: string;
  readonly #parentLog: Logger | undefined;
  #childLog: Logger | undefined;
  /**
   * The process's pin, shared with its other connections. Its one kept file (`status`) is the
   * only one: every fd counts against the open-files limit in a burst.
   */
  readonly #pin: ProcessPin;
  #closed = false;

  /**
   * Prefer PeerTracker.track(); this takes an already-open fd on /proc/<pid> (owned from now on),
   * or a pin PeerTracker shares between the connections of one process (retained for this one).
   */
  constructor(snapshot: PeerSnapshot, dirFd: number | ProcessPin, config: PeerTrackerConfig) {
    this.snapshot = snapshot;
    this.#pin = typeof dirFd === 'number' ? new ProcessPin(snapshot.cred.pid, snapshot.startTime, dirFd) : dirFd;
    this.#attestors = config.attestors;
    this.#procRoot = config.procRoot ?? '/proc';
    // The child logger is made on first use: a connection that never fails never needs one, and
    // an agent holds one TrackedPeer per open Workload API connection.
    this.#parentLog = config.logger;
  }

  get #log(): Logger {
    return (this.#childLog ??= (this.#parentLog ?? silentLogger()).child({ pid: this.snapshot.cred.pid }));
  }

  get pid(): number {
    return this.snapshot.cred.pid;
  }

  get closed(): boolean {
    return this.#closed || this.#pin.closed;
  }

  /**
   * Throws PeerChangedError unless the pinned process still runs with the connect-time start time,
   * uid/gid and executable, and `/proc/<pid>` still names that process. procfs reads never wait
   * on a disk, so they are done synchronously: through fs/promises each file costs four thread
   * pool round trips, which made this check most of a Workload API call's latency.
   *
   * Usually three syscalls. `/proc/<pid>` names the pinned process if its inode is the pinned
   * directory's: our open handle keeps that directory's dentry while the process exists (procfs
   * revalidates a pid dentry against its task), and a process that takes the pid later gets a new
   * dentry and inode. Only if the inodes differ is the start time read by pid and compared. The
   * executable is then looked up by pid, and last a file of the pinned process is read through
   * an fd of its own (kept open: one pread of `status`, parsed unless an attestor read the status
   * in this attestation round), which succeeds only while that process has not been reaped; so `/proc/<pid>`,
   * used just before, was that process (a pid is never shared by two live processes).
   */
  #verifySame(stage: string, roundStatus?: ProcStatus): void {
    if (this.closed) throw new PeerChangedError('peer is no longer tracked');
    const { cred, startTime, exe } = this.snapshot;
    const byPid = `${this.#procRoot}/${cred.pid}`;
    let byPidIno: number;
    try {
      byPidIno = statSync(byPid).ino;
    } catch (e) {
      throw new PeerChangedError(`caller exit suspected (${stage}): cannot stat ${byPid}`, { cause: e });
    }
    if (byPidIno !== this.#pin.ino) {
      let byPidStart: string;
      try {
        byPidStart = readStartTimeSync(byPid);
      } catch (e) {
        throw new PeerChangedError(`caller exit suspected (${stage}): cannot read stat`, { cause: e });
      }
      if (byPidStart !== startTime) {
        throw new PeerChangedError(`new process detected (${stage}): start time ${byPidStart} does not match original caller ${startTime}`);
      }
    }
    const nowExe = exeIdentitySync(byPid);
    let status: ProcStatus;
    try {
      if (roundStatus === undefined) {
        status = parseProcStatus(this.#statusText());
      } else {
        // An attestor read the status through the kept fd during this attestation round: its uid/gid are
        // checked, and the liveness read is one more pread of that fd, not parsed.
        this.#statusText();
        status = roundStatus;
      }
    } catch (e) {
      throw new PeerChangedError(`caller exit suspected (${stage}): cannot read status`, { cause: e });
    }
    const uid = effectiveId(status.uids);
    const gid = effectiveId(status.gids);
    if (uid !== cred.uid || gid !== cred.gid) {
      throw new PeerChangedError(`process credentials changed (${stage}): uid/gid ${uid}/${gid}, caller connected as ${cred.uid}/${cred.gid}`);
    }
    if (nowExe !== exe) {
      throw new PeerChangedError(`executable replaced (${stage}): ${nowExe}, caller connected running ${exe}`);
    }
  }

  /** The pinned process's status text (one pread on the kept fd); throws once it is gone. */
  #statusText(): string {
    if (this.#closed) throw new PeerChangedError('peer is no longer tracked');
    return this.#pin.statusText();
  }

  /** Throws ERR_UNAVAILABLE if the peer exited or is no longer the process that connected. */
  async checkAlive(): Promise<void> {
    try {
      this.#verifySame('check');
    } catch (e) {
      this.#log.warn({ err: e }, 'workload peer changed');
      throw failed(this.pid, e);
    }
  }

  /**
   * Selectors of the peer, from all attestors, only if the process that connected is the one
   * that was attested. Any failure → ERR_UNAVAILABLE `workload attestation failed`; an aborted
   * signal rethrows its reason.
   *
   * One check, after the attestors ran, is enough (and is what SPIRE does): the pinned process
   * cannot come back once gone, so if it is still there, unchanged, now, then `/proc/<pid>` named
   * it for the whole attestation; an exec or a pid reuse at any earlier point fails the check.
   */
  async attest(signal?: AbortSignal): Promise<Selector[]> {
    try {
      signal?.throwIfAborted();
      let results: Selector[][];
      // The status an attestor read through the pinned fd in this attestation round (calls on one connection
      // may overlap, so it is per round, not per peer).
      let roundStatus: ProcStatus | undefined;
      const view: PinnedProcess = { status: () => (roundStatus = parseProcStatus(this.#statusText())) };
      try {
        results = await Promise.all(this.#attestors.map((a) => a.attest(this.pid, signal, view)));
      } catch (e) {
        // An attestor failing on a vanished process: report that, not the attestor's symptom.
        if (!signal?.aborted) this.#verifySame('during attestation');
        throw e;
      }
      this.#verifySame('after attestation', roundStatus);
      return results.flat();
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      this.#log.warn({ err: e }, 'workload attestation failed');
      throw failed(this.pid, e);
    }
  }

  /** Releases this connection's hold on the pin (the process's last connection closes it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pin.release();
  }
}

export class PeerTracker {
  readonly #config: PeerTrackerConfig;
  readonly #procRoot: string;
  readonly #log: Logger;
  /** The live pins by pid: a process's next connection shares its pin while it is the same process. */
  readonly #pins = new Map<number, ProcessPin>();

  constructor(config: PeerTrackerConfig) {
    this.#config = config;
    this.#procRoot = config.procRoot ?? '/proc';
    this.#log = config.logger ?? silentLogger();
  }

  /**
   * Call on the accepted socket before reading from it. Pins the peer and closes the pin when the
   * socket closes. Throws ERR_UNAVAILABLE if the peer cannot be identified or is already gone.
   */
  track(socket: Socket): TrackedPeer {
    let cred: PeerCred;
    try {
      cred = peerCredOf(socket);
    } catch (e) {
      this.#log.warn({ err: e }, 'cannot read workload peer credentials');
      throw new ZtwimError('ERR_UNAVAILABLE', WORKLOAD_ATTESTATION_FAILED, { cause: e });
    }
    const peer = this.trackCred(cred);
    if (socket.closed) peer.close();
    else socket.once('close', () => peer.close());
    return peer;
  }

  /**
   * Pins the process named by credentials the caller read from the kernel at accept time.
   * Everything here is synchronous so the window between accept and pinning stays tiny.
   */
  trackCred(cred: PeerCred): TrackedPeer {
    const shared = this.#pins.get(cred.pid);
    if (shared !== undefined) {
      const peer = this.#share(shared, cred);
      if (peer !== undefined) return peer;
    }
    const procDir = `${this.#procRoot}/${cred.pid}`;
    let fd: number;
    try {
      // libuv opens with O_CLOEXEC.
      fd = openSync(procDir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    } catch (e) {
      this.#log.warn({ pid: cred.pid, err: e }, 'could not open caller proc directory');
      throw failed(cred.pid, e, 'caller exited');
    }
    try {
      const pinned = `/proc/self/fd/${fd}`;
      const startTime = readStartTimeSync(pinned);
      const status = readProcStatusSync(pinned);
      // If we lost a pid race between connect() and open(), the winner must at least run as
      // the same user and group that connected (as SPIRE checks).
      const uid = effectiveId(status.uids);
      const gid = effectiveId(status.gids);
      if (uid !== cred.uid || gid !== cred.gid) {
        throw new PeerChangedError(`new process detected: uid/gid ${uid}/${gid} do not match caller ${cred.uid}/${cred.gid}`);
      }
      const exe = exeIdentitySync(pinned);
      const pin = new ProcessPin(cred.pid, startTime, fd, (p) => {
        if (this.#pins.get(p.pid) === p) this.#pins.delete(p.pid);
      });
      this.#pins.set(cred.pid, pin);
      return new TrackedPeer(Object.freeze({ cred, startTime, exe }), pin, this.#config);
    } catch (e) {
      closeSync(fd);
      this.#log.warn({ pid: cred.pid, err: e }, 'could not pin caller process');
      throw failed(cred.pid, e);
    }
  }

  /**
   * A new connection of a process already pinned for another: shares that pin if `/proc/<pid>`
   * is still the pinned directory (the same inode: see TrackedPeer's #verifySame), so the process
   * that connected is the pinned one. Anything else (another process under the pid, an error) is
   * left to a fresh pin, which refuses or replaces this one. The snapshot is this connection's
   * own: the uid/gid of its socket's peer and the executable the process runs now (an exec since
   * the earlier connection is this one's starting point). Nothing more is read here: every call
   * checks that the pinned process is alive and runs with the snapshot's uid/gid before it gets
   * selectors, so a process whose credentials differ from its socket's gets none either way,
   * and a burst of connections from one process costs two stats each.
   */
  #share(pin: ProcessPin, cred: PeerCred): TrackedPeer | undefined {
    const byPid = `${this.#procRoot}/${cred.pid}`;
    try {
      if (statSync(byPid).ino !== pin.ino) return undefined;
      const exe = exeIdentitySync(byPid);
      pin.retain();
      return new TrackedPeer(Object.freeze({ cred, startTime: pin.startTime, exe }), pin, this.#config);
    } catch {
      return undefined;
    }
  }
}
