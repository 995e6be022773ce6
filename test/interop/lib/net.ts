// Loopback ports for the servers the tests start.
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { freePort } from '@ztwim/testkit/procs';

/** The harness's: a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export { freePort };

/** Whether something accepts TCP connections on host:port. */
export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function listenOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) && n > 12000 ? n : 32768;
  } catch {
    return 32768;
  }
}

/**
 * `count` consecutive loopback ports, all free a moment ago, chosen below the kernel's ephemeral
 * range: a port the OS hands out (freePort) can be taken by any outgoing connection before the
 * server that was meant to have it binds it, and a port next to it was never probed at all
 * (etcd's peer port is its client port + 1). The test cluster's defaults (26xxx) are avoided.
 */
export async function freePortsBelowEphemeral(count: number): Promise<number> {
  const high = ephemeralLow() - count;
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 10000 + Math.floor(Math.random() * (high - 10000));
    if (base + count > 26000 && base < 27000) continue;
    let all = true;
    for (let i = 0; i < count && all; i++) all = await listenOnce(base + i);
    if (all) return base;
  }
  throw new Error(`no ${count} consecutive free loopback ports below ${high + count}`);
}
