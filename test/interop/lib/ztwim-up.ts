// `ztwim up` as a user runs it, in a child process with its own temp dir, sockets and ports.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ZTWIM_BIN } from './peers.ts';
import type { TmpDir } from './tmp.ts';

export interface Up {
  child: ChildProcess;
  out: () => string;
}

/** Starts `ztwim up` in `dir` (sockets `server.sock`, `agent.sock`); resolves once it is ready. */
export async function startUp(dir: TmpDir, ports: { server: number; oidc: number }, extraArgs: readonly string[] = []): Promise<Up> {
  // The command itself, as `npx ztwim up` runs it: its shebang picks node and the V8 flags.
  const child = spawn(
    ZTWIM_BIN,
    [
      'up',
      '-dataDir',
      join(dir.path, 'state'),
      '-serverPort',
      String(ports.server),
      '-serverSocketPath',
      join(dir.path, 'server.sock'),
      '-socketPath',
      join(dir.path, 'agent.sock'),
      '-oidcPort',
      String(ports.oidc),
      '-metricsPort',
      '0',
      '-agentMetricsPort',
      '0',
      ...extraArgs,
    ],
    { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!out.includes('Press Ctrl-C to stop.')) {
    if (child.exitCode !== null) throw new Error(`ztwim up exited ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`ztwim up not ready after 30s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, out: () => out };
}

/** Ctrl-C, then its exit code. */
export async function stopUp(up: Up): Promise<number | null> {
  if (up.child.exitCode !== null) return up.child.exitCode;
  const exited = new Promise<number | null>((r) => up.child.once('exit', (code) => r(code)));
  up.child.kill('SIGINT');
  return exited;
}

/** `ztwim ARGS` run to completion in `dir` (e.g. `server entry show -socketPath ...`). */
export function ztwim(dir: TmpDir, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(ZTWIM_BIN, args, { cwd: dir.path, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `ztwim server entry create` against `up`'s admin socket in `dir` (server.sock); fails the caller
 * with the command's stderr when it does not succeed.
 */
export function createEntry(dir: TmpDir, parentId: string, spiffeId: string, selectors: readonly string[], ...extra: string[]): void {
  const sock = join(dir.path, 'server.sock');
  const r = ztwim(
    dir,
    'server',
    'entry',
    'create',
    '-socketPath',
    sock,
    '-parentID',
    parentId,
    '-spiffeID',
    spiffeId,
    ...selectors.flatMap((x) => ['-selector', x]),
    ...extra,
  );
  if (r.status !== 0) throw new Error(`entry create ${spiffeId} failed (${r.status}): ${r.stderr}`);
}
