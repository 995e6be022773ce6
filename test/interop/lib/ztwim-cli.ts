// Runs the `ztwim` command as a user would (a child process) and waits for a condition: shared by
// the CLI tests of test/integration and test/interop.
import { execFile, type ChildProcess } from 'node:child_process';
import { startProc } from '@ztwim/testkit/procs';
import { ZTWIM_BIN } from './peers.ts';
import type { TmpDir } from './tmp.ts';

export interface CliRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `ztwim <args>` in cwd (30 s limit by default); never throws: the exit status is in the result. */
export function runZtwim(cwd: string, args: readonly string[], opts: { uid?: number; gid?: number; timeoutMs?: number } = {}): Promise<CliRun> {
  return runCommand(process.execPath, [ZTWIM_BIN, ...args], cwd, opts);
}

/** Any command, as runZtwim. */
export function runCommand(
  cmd: string,
  args: readonly string[],
  cwd: string,
  opts: { uid?: number; gid?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliRun> {
  const { timeoutMs = 30_000, ...rest } = opts;
  return new Promise((resolve) => {
    execFile(cmd, [...args], { cwd, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, ...rest }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ status, stdout, stderr });
    });
  });
}

/** A long-running `ztwim` child (`server run`, `agent run`) with its output collected. */
export interface Proc {
  child: ChildProcess;
  out: () => string;
}

/** Starts `ztwim <args>` in `dir`, collecting its output (killed if the test process exits first). */
export function startZtwim(dir: TmpDir, args: string[]): Proc {
  const p = startProc(`ztwim ${args.slice(0, 2).join(' ')}`, process.execPath, [ZTWIM_BIN, ...args], { cwd: dir.path });
  return { child: p.child, out: () => p.output() };
}

/** Sends `signal` (SIGKILL after 15 s), then the exit code and how long it took. */
export async function stopProc(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  if (p.child.exitCode !== null || p.child.signalCode !== null) return { code: p.child.exitCode, ms: 0 };
  const exited = new Promise<number | null>((r) => p.child.once('exit', (code) => r(code)));
  p.child.kill(signal);
  const killer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
  const code = await exited;
  clearTimeout(killer);
  return { code, ms: Date.now() - t0 };
}
