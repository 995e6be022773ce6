import type { Socket } from 'node:net';

import { PeerCredError } from './errors.ts';
import { linuxBackend } from './peer-cred-linux.ts';
import type { PeerCred, PeerCredBackend } from './peer-cred-types.ts';
import { unsupportedBackend } from './peer-cred-unsupported.ts';

const backend: PeerCredBackend = process.platform === 'linux' ? linuxBackend : unsupportedBackend;

/** True when this platform can report peer credentials (Linux). */
export function isPeerCredSupported(): boolean {
  return backend.supported;
}

/** The slice of node's internal socket handle we read: a Pipe handle exposes its fd on Unix. */
interface HandleView {
  readonly _handle?: { readonly fd?: unknown } | null;
}

/** The file descriptor behind a connected `net.Socket`, or a PeerCredError if it has none. */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as HandleView)._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new PeerCredError('ERR_PEERCRED_NO_FD', socket.destroyed ? 'peercred: socket is destroyed' : 'peercred: socket has no file descriptor');
  }
  return fd;
}

/** SO_PEERCRED of a file descriptor of a connected Unix domain socket. */
export function peerCredOfFd(fd: number): PeerCred {
  if (!backend.supported) return backend.credOfFd(fd);
  if (!Number.isInteger(fd) || fd < 0) throw new PeerCredError('ERR_PEERCRED_NO_FD', 'peercred: invalid file descriptor');
  return backend.credOfFd(fd);
}

/**
 * The process at the other end of a Unix domain socket, as the kernel recorded it at connect().
 * Call it on the accepted socket right after accept, before the peer can go away.
 */
export function peerCredOf(socket: Socket): PeerCred {
  if (!backend.supported) return backend.credOfFd(-1);
  return peerCredOfFd(socketFd(socket));
}

/**
 * Supplementary groups of the peer at connect time (SO_PEERGROUPS, Linux ≥ 4.13);
 * an empty list where the kernel lacks it.
 */
export function peerGroupsOf(socket: Socket): readonly number[] {
  if (!backend.supported) return backend.groupsOfFd(-1);
  return backend.groupsOfFd(socketFd(socket));
}

/**
 * Takes up to `max` connections waiting in the queue of listening Unix socket `listenFd` at once
 * and returns their file descriptors (non-blocking, close-on-exec; the caller owns them, e.g.
 * `new net.Socket({ fd })`). libuv, under Node 20, accepts one connection per event-loop turn,
 * so on a busy process a burst of clients waits in the queue for as many turns as there are
 * clients; Go's servers (SPIRE) accept in a loop of their own. Empty where unsupported, when the
 * queue is empty, or at the first accept error (e.g. EMFILE: the event loop's accept handles it).
 */
export function acceptPendingConnections(listenFd: number, max: number): number[] {
  if (!Number.isInteger(listenFd) || listenFd < 0) throw new PeerCredError('ERR_PEERCRED_NO_FD', 'peercred: invalid file descriptor');
  return backend.acceptPending(listenFd, Math.max(0, Math.floor(max)));
}

/**
 * Hands the memory that the C heap keeps free back to the kernel (glibc's `malloc_trim(0)`) and
 * says whether any was. After a burst of connections, glibc keeps what native code freed
 * (HTTP/2 sessions, socket buffers) in its arenas: a resident set tens of MiB above what is in
 * use, which no JavaScript GC returns. False where there is nothing to call (not Linux, not glibc).
 */
export function trimNativeHeap(): boolean {
  return backend.trimHeap();
}
