// Listener failures that name their cause: which listener, what holds the address, and which
// config key or flag moves it (`listen EADDRINUSE 127.0.0.1:58443` alone names none of these).
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoOf, ZtwimError } from '../errors.ts';
import { findSocketHolder, type ListenerAddress, type SocketHolder } from './listener-holder.ts';

export interface ListenerInfo {
  /** What listens: "server API for agents", "admin API socket", "Workload API socket", ... */
  readonly name: string;
  /** host:port or a socket path. */
  readonly address: string;
  readonly at: ListenerAddress;
  /** How to move it: `server.bind_port in the config or -serverPort`. */
  readonly moveWith: string;
}

/** Set by the gRPC server when a live socket is found at the path (see @ztwim/proto). */
export const SOCKET_IN_USE = 'ESOCKETINUSE';

const holderText = (h: SocketHolder | undefined): string =>
  h === undefined ? '' : ` (held by pid ${h.pid}${h.command === '' ? '' : `: ${h.command.length > 120 ? `${h.command.slice(0, 117)}...` : h.command}`})`;

/** The nearest existing directory above path, with its owner and mode. */
function nearestDir(path: string): { dir: string; uid: number; mode: number } | undefined {
  for (let d = dirname(path), i = 0; i < 64; d = dirname(d), i++) {
    try {
      const st = statSync(d);
      return { dir: d, uid: st.uid, mode: st.mode & 0o777 };
    } catch {
      if (d === dirname(d)) return undefined;
    }
  }
  return undefined;
}

/** Turns a failure to bind a listener into an error that says which, why, and how to move it. */
export function listenError(e: unknown, l: ListenerInfo, findHolder: (a: ListenerAddress) => SocketHolder | undefined = findSocketHolder): ZtwimError {
  const errno = errnoOf(e);
  const raw = e instanceof Error ? e.message : String(e);
  const fields = { listener: l.name, address: l.address };
  if (errno === 'EADDRINUSE' || errno === SOCKET_IN_USE) {
    const what = 'path' in l.at ? `socket ${l.address} is in use by another server` : `cannot listen on ${l.address}: address already in use`;
    return new ZtwimError('ERR_UNAVAILABLE', `${l.name}: ${what}${holderText(findHolder(l.at))}; stop that process or move this listener with ${l.moveWith}`, {
      cause: e,
      fields,
    });
  }
  if (errno === 'EACCES' || errno === 'EPERM') {
    const uid = process.getuid?.();
    const d = 'path' in l.at ? nearestDir(l.at.path) : undefined;
    const why =
      d === undefined
        ? 'permission denied'
        : `permission denied: ${d.dir} belongs to uid ${d.uid} (mode ${d.mode.toString(8).padStart(4, '0')})${uid === undefined ? '' : ` and this process runs as uid ${uid}`}, e.g. another user's ztwim or SPIRE made it`;
    const action =
      'path' in l.at
        ? `choose a path this user can write with ${l.moveWith}`
        : `choose a port above 1023 or run with the needed privilege; the port is set with ${l.moveWith}`;
    return new ZtwimError('ERR_PERMISSION_DENIED', `${l.name}: cannot use ${l.address}: ${why}; ${action}`, { cause: e, fields });
  }
  if (errno === 'EADDRNOTAVAIL' || errno === 'ENOTFOUND') {
    return new ZtwimError('ERR_CONFIG', `${l.name}: cannot listen on ${l.address}: this machine has no such address (${raw}); set another with ${l.moveWith}`, {
      cause: e,
      fields,
    });
  }
  return new ZtwimError('ERR_UNAVAILABLE', `${l.name}: cannot listen on ${l.address}: ${raw}; the address is set with ${l.moveWith}`, { cause: e, fields });
}
