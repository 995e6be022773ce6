// The `ztwim` command as child processes (as a user runs it), for tests of whole processes:
// long-running `ztwim server run` / `ztwim agent run`, and one-shot commands.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { ZTWIM_BIN as ZTWIM } from './peers.ts';
import type { TmpDir } from './tmp.ts';

export interface Proc { child: ChildProcess; out: () => string }

/** Starts `ztwim <args>` in `dir`, collecting its output. */
export function startZtwim(dir: TmpDir, args: string[]): Proc {
  const child = spawn(process.execPath, [ZTWIM, ...args], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
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

/** Runs `ztwim <args>` to completion in `dir`. */
export function ztwimCmd(dir: TmpDir, ...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ZTWIM, ...args], { cwd: dir.path, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ status, stdout, stderr });
    });
  });
}

/** Polls `fn` every 250 ms until it returns a value, failing after `ms`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
