// Which process holds a listening socket, from /proc (Linux): the socket's inode from
// /proc/net/unix or /proc/net/tcp{,6}, then the process whose /proc/<pid>/fd links to
// `socket:[inode]`. Best effort: undefined where /proc is missing or not readable (other users'
// processes without privileges), so error messages name the holder when they can.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface SocketHolder {
  readonly pid: number;
  /** The command line, space-separated (may be empty for kernel threads or unreadable). */
  readonly command: string;
}

export type ListenerAddress = { readonly path: string } | { readonly port: number };

const read = (p: string): string | undefined => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};

/** Inodes of listening sockets at the address (Unix path, or any TCP address on the port). */
export function listenerInodes(addr: ListenerAddress, procRoot = '/proc'): Set<string> {
  const inodes = new Set<string>();
  if ('path' in addr) {
    // Num RefCount Protocol Flags Type St Inode Path; a listening socket has flag __SO_ACCEPTCON (00010000)
    for (const line of (read(`${procRoot}/net/unix`) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 8 && f.slice(7).join(' ') === addr.path && (parseInt(f[3] ?? '0', 16) & 0x10000) !== 0) inodes.add(f[6] as string);
    }
    return inodes;
  }
  const port = addr.port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['tcp', 'tcp6']) {
    // sl local_address rem_address st ... inode (10th); state 0A is LISTEN
    for (const line of (read(`${procRoot}/net/${file}`) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 10 && f[1]?.endsWith(`:${port}`) && f[3] === '0A') inodes.add(f[9] as string);
    }
  }
  return inodes;
}

export function findSocketHolder(addr: ListenerAddress, procRoot = '/proc'): SocketHolder | undefined {
  const inodes = listenerInodes(addr, procRoot);
  if (inodes.size === 0) return undefined;
  const links = new Set([...inodes].map((i) => `socket:[${i}]`));
  let pids: string[];
  try {
    pids = readdirSync(procRoot).filter((d) => /^[0-9]+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${procRoot}/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`${procRoot}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (links.has(target)) {
        const command = (read(`${procRoot}/${pid}/cmdline`) ?? '')
          .split('\0')
          .filter((s) => s !== '')
          .join(' ');
        return { pid: Number(pid), command };
      }
    }
  }
  return undefined;
}
