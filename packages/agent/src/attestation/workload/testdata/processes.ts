// Test helpers (tests only): a Unix socket server on a temp dir and real child processes that
// connect to it. Children run from `/` so they work under setpriv as nobody.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] as const;

export interface UdsServer {
  readonly dir: string;
  readonly path: string;
  /** Resolves with the next accepted connection (paused: we never read from it). */
  nextConnection(): Promise<Socket>;
  close(): Promise<void>;
}

export async function startUdsServer(): Promise<UdsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-attest-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'api.sock');
  const waiting: Array<(s: Socket) => void> = [];
  const early: Socket[] = [];
  const server: Server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    const w = waiting.shift();
    if (w === undefined) early.push(s);
    else w(s);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  chmodSync(path, 0o777);
  return {
    dir,
    path,
    nextConnection: () => {
      const s = early.shift();
      return s !== undefined ? Promise.resolve(s) : new Promise<Socket>((resolve) => waiting.push(resolve));
    },
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Child {
  readonly child: ChildProcess;
  readonly pid: number;
  /** First stdout line, parsed as JSON when it is JSON. */
  readonly ready: unknown;
  readonly exited: Promise<void>;
  /** Sends one line on stdin. */
  send(line: string): void;
  /** Closes stdin (our children exit on that) and waits for the exit. */
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** Spawns argv and waits for its first stdout line (the child's "ready" report). */
export async function spawnReady(argv: readonly string[]): Promise<Child> {
  const [cmd, ...args] = argv;
  assert.ok(cmd !== undefined, 'empty argv');
  const child = spawn(cmd, args, { cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] });
  let exitedFlag = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exitedFlag = true;
      resolve();
    }),
  );
  const ready = await new Promise<unknown>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const line = out.slice(0, nl);
      try {
        resolve(JSON.parse(line));
      } catch {
        resolve(line);
      }
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code, sig) => reject(new Error(`${argv.join(' ')} exited early (${code ?? sig}): ${err}`)));
  });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  return {
    child,
    pid,
    ready,
    exited,
    send: (line) => child.stdin?.write(`${line}\n`),
    stop: async () => {
      child.stdin?.end();
      await exited;
    },
    kill: async () => {
      if (!exitedFlag) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * A node child that connects to `sockPath`, prints `{pid,uid,gid}` once connected, then obeys
 * stdin lines: `exit` exits, `setuid <n>` drops to uid/gid n; stdin EOF exits.
 */
export const NODE_CLIENT = `
const c = require('node:net').connect(process.argv[1]);
c.on('connect', () => process.stdout.write(JSON.stringify({ pid: process.pid, uid: process.getuid(), gid: process.getgid() }) + '\\n'));
c.on('error', (e) => { process.stderr.write(String(e)); process.exit(3); });
let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf('\\n')) >= 0) {
    const [cmd, arg] = buf.slice(0, nl).split(' ');
    buf = buf.slice(nl + 1);
    if (cmd === 'exit') process.exit(0);
    if (cmd === 'setuid') { process.setgid(Number(arg)); process.setuid(Number(arg)); process.stdout.write('ok\\n'); }
  }
});
process.stdin.on('end', () => process.exit(0));
`;

export interface NodeClientInfo {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export async function spawnNodeClient(
  sockPath: string,
  wrapper: readonly string[] = [],
): Promise<Child & { readonly info: NodeClientInfo }> {
  const c = await spawnReady([...wrapper, process.execPath, '-e', NODE_CLIENT, sockPath]);
  return { ...c, info: c.ready as NodeClientInfo };
}

/**
 * A perl child that connects to `sockPath` with an inheritable socket, prints its pid, and on
 * the stdin line `exec` replaces itself (same pid, same socket) with `/usr/bin/sleep 30`.
 */
export const PERL_CLIENT = `
use strict; use Socket; use Fcntl;
socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
connect($s, pack_sockaddr_un($ARGV[0])) or die "connect: $!";
my $fl = fcntl($s, F_GETFD, 0); fcntl($s, F_SETFD, $fl & ~FD_CLOEXEC) or die "fcntl: $!";
$| = 1; print "$$\\n";
while (my $line = <STDIN>) { chomp $line; if ($line eq 'exec') { exec('/usr/bin/sleep', '30') or die "exec: $!"; } }
`;

export async function spawnPerlClient(sockPath: string): Promise<Child> {
  return spawnReady(['/usr/bin/perl', '-e', PERL_CLIENT, sockPath]);
}

/** A plain long-running program (e.g. a copy of sleep) that says nothing; resolves once exec'd. */
export async function spawnQuiet(argv: readonly string[]): Promise<Child> {
  const [cmd, ...args] = argv;
  assert.ok(cmd !== undefined);
  const child = spawn(cmd, args, { cwd: '/', stdio: ['pipe', 'ignore', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  let exitedFlag = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exitedFlag = true;
      resolve();
    }),
  );
  return {
    child,
    pid,
    ready: undefined,
    exited,
    send: (line) => child.stdin?.write(`${line}\n`),
    stop: async () => {
      if (!exitedFlag) child.kill('SIGTERM');
      await exited;
    },
    kill: async () => {
      if (!exitedFlag) child.kill('SIGKILL');
      await exited;
    },
  };
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
