// Runs the `ztwim` command as a user would (a child process) and waits for a condition: shared by
// the CLI tests of test/integration and test/interop.
import { execFile } from 'node:child_process';
import { ZTWIM_BIN } from './peers.ts';

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
export function runCommand(cmd: string, args: readonly string[], cwd: string, opts: { uid?: number; gid?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  const { timeoutMs = 30_000, ...rest } = opts;
  return new Promise((resolve) => {
    execFile(cmd, [...args], { cwd, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, ...rest }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ status, stdout, stderr });
    });
  });
}

