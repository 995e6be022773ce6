// Linux: SO_PEERCRED / SO_PEERGROUPS through the N-API addon in ../native/peercred.c.
import { createRequire } from 'node:module';

import { PeerCredError } from './errors.ts';
import type { PeerCred, PeerCredBackend } from './peer-cred-types.ts';

/** The addon's exports (native/peercred.c). */
interface NativePeerCred {
  getPeerCred(fd: number): unknown;
  getPeerGroups(fd: number): unknown;
  acceptPending(fd: number, max: number): unknown;
  trimHeap(): unknown;
  readonly platform: string;
}

// src/ and dist/ both sit one level below the package root, next to build/.
const ADDON_PATH = '../build/Release/peercred.node';

let cached: NativePeerCred | undefined;

function isNative(v: unknown): v is NativePeerCred {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o['getPeerCred'] === 'function' &&
    typeof o['getPeerGroups'] === 'function' &&
    typeof o['acceptPending'] === 'function' &&
    typeof o['trimHeap'] === 'function' &&
    typeof o['platform'] === 'string'
  );
}

function addon(): NativePeerCred {
  if (cached !== undefined) return cached;
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH);
  } catch (cause) {
    throw new PeerCredError('ERR_PEERCRED_ADDON', 'peercred: native addon not available (build it with `npm rebuild -w @ztwim/peercred`)', { cause });
  }
  if (!isNative(loaded)) throw new PeerCredError('ERR_PEERCRED_ADDON', 'peercred: native addon has unexpected exports');
  cached = loaded;
  return loaded;
}

function errnoOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function syscall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    const errno = errnoOf(cause);
    throw new PeerCredError('ERR_PEERCRED_SYSCALL', message, errno === undefined ? { cause } : { cause, errno });
  }
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

export const linuxBackend: PeerCredBackend = {
  supported: true,
  credOfFd(fd: number): PeerCred {
    const native = addon();
    const raw = syscall(() => native.getPeerCred(fd));
    const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const { pid, uid, gid } = o;
    if (!isUint32(pid) || !isUint32(uid) || !isUint32(gid) || pid === 0) {
      throw new PeerCredError('ERR_PEERCRED_ADDON', 'peercred: native addon returned malformed credentials');
    }
    return Object.freeze({ pid, uid, gid });
  },
  groupsOfFd(fd: number): readonly number[] {
    const native = addon();
    const raw = syscall(() => native.getPeerGroups(fd));
    if (!Array.isArray(raw) || !raw.every(isUint32)) {
      throw new PeerCredError('ERR_PEERCRED_ADDON', 'peercred: native addon returned malformed groups');
    }
    return Object.freeze([...raw]);
  },
  acceptPending(fd: number, max: number): number[] {
    const native = addon();
    const raw = syscall(() => native.acceptPending(fd, max));
    if (!Array.isArray(raw) || !raw.every(isUint32)) {
      throw new PeerCredError('ERR_PEERCRED_ADDON', 'peercred: native addon returned malformed file descriptors');
    }
    return raw;
  },
  trimHeap(): boolean {
    return addon().trimHeap() === true;
  },
};
