/** What the kernel recorded about the peer of a connected Unix socket when it connected. */
export interface PeerCred {
  readonly pid: number;
  /** Effective uid at connect time. */
  readonly uid: number;
  /** Effective gid at connect time. */
  readonly gid: number;
}

/** One platform's implementation, chosen once by `peer-cred.ts`. */
export interface PeerCredBackend {
  readonly supported: boolean;
  credOfFd(fd: number): PeerCred;
  groupsOfFd(fd: number): readonly number[];
  /** Up to `max` connections waiting on listening socket `fd` (accept4, non-blocking). */
  acceptPending(fd: number, max: number): number[];
  /** Hands the memory the C heap holds free back to the kernel (glibc malloc_trim); whether any was. */
  trimHeap(): boolean;
}
