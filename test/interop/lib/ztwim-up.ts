// `ztwim up` as a user runs it, in a child process with its own temp dir, sockets and ports.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startProc, waitReady, type Proc } from '@ztwim/testkit/procs';
import { ZTWIM_BIN } from './peers.ts';
import type { TmpDir } from './tmp.ts';

export interface Up {
  readonly proc: Proc;
  readonly child: ChildProcess;
  readonly out: () => string;
}

/** Starts `ztwim up` in `dir` (sockets `server.sock`, `agent.sock`); resolves once it is ready. */
export async function startUp(dir: TmpDir, ports: { server: number; oidc: number }, extraArgs: readonly string[] = []): Promise<Up> {
  // The command itself, as `npx ztwim up` runs it: its shebang picks node and the V8 flags.
  const proc = startProc(
    'ztwim up',
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
    { cwd: dir.path },
  );
  try {
    await waitReady('ztwim up to be ready', proc, () => proc.output().includes('Press Ctrl-C to stop.'), { timeoutMs: 30_000, intervalMs: 100 });
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { proc, child: proc.child, out: () => proc.output() };
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
