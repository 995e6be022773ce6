// The process harness of the interop tests and the benches: child processes (SPIRE's binaries,
// ztwim's CLI, load generators) started with their output collected, awaited until ready, stopped
// with SIGTERM then SIGKILL, and killed when the test or bench process exits however it ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { eventually } from './eventually.ts';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the process wrote to stdout and stderr so far (the tail, with `maxOutputChars`). */
  output(): string;
  exited(): boolean;
  /** undefined while running; the exit code, or null after a signal. */
  exitCode(): number | null | undefined;
  /** SIGTERM, then SIGKILL after the grace period; resolves once it exited. */
  stop(): Promise<void>;
}

export interface ProcOptions {
  readonly cwd?: string;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Also append the output to `<logDir>/<name>.log`. */
  readonly logDir?: string;
  /**
   * Instead of piping: the child writes stdout and stderr straight to this file (appended), and
   * output() reads it back. For benches, whose measured process must never wait on this one's
   * event loop to drain a pipe.
   */
  readonly outputFile?: string;
  /** Keep only the last `maxOutputChars / 2` characters once the output passes this (default: all). */
  readonly maxOutputChars?: number;
  /** Milliseconds between SIGTERM and SIGKILL in stop() (default 5000). */
  readonly stopGraceMs?: number;
}

/** The processes started here and not yet stopped: SIGKILLed when this process exits. */
export const liveProcs = new Set<Proc>();

let exitHookInstalled = false;
function killLiveOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of liveProcs) if (!p.exited()) p.child.kill('SIGKILL');
  });
}

/**
 * Takes charge of a spawned child: collects its piped stdout and stderr, tracks its exit, and kills
 * it if this process exits first.
 */
export function adoptProc(
  name: string,
  child: ChildProcess,
  opts: Omit<ProcOptions, 'cwd' | 'env' | 'outputFile'> & { readonly outputFile?: string } = {},
): Proc {
  let out = '';
  let code: number | null | undefined;
  const max = opts.maxOutputChars ?? Infinity;
  const logFile = opts.logDir === undefined ? undefined : join(opts.logDir, `${name.replace(/[^\w.-]+/g, '_')}.log`);
  const keep = (d: Buffer | string): void => {
    if (logFile !== undefined) appendFileSync(logFile, d);
    out += d.toString();
    if (out.length > max) out = out.slice(-Math.floor(max / 2));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const done = new Promise<void>((resolve) => {
    child.once('exit', (c) => {
      code = c;
      liveProcs.delete(p);
      resolve();
    });
    // A child that could not be spawned emits 'error' and never 'exit'.
    child.once('error', (e) => {
      keep(`\nspawn error: ${e.message}\n`);
      if (child.pid === undefined) {
        code = -1;
        liveProcs.delete(p);
        resolve();
      }
    });
  });
  const p: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => (opts.outputFile === undefined ? out : readTail(opts.outputFile, opts.maxOutputChars)),
    exited: () => code !== undefined,
    exitCode: () => code,
    async stop() {
      if (code === undefined) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), opts.stopGraceMs ?? 5000);
        await done;
        clearTimeout(t);
      }
      liveProcs.delete(p);
    },
  };
  killLiveOnExit();
  liveProcs.add(p);
  return p;
}

function readTail(file: string, max = Infinity): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > max ? text.slice(-Math.floor(max / 2)) : text;
  } catch {
    return '';
  }
}

/** Spawns `cmd argv` (stdin closed, stdout and stderr collected) as a Proc. Throws if it cannot start. */
export function startProc(name: string, cmd: string, argv: readonly string[], opts: ProcOptions = {}): Proc {
  const fd = opts.outputFile === undefined ? undefined : openSync(opts.outputFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, {
      stdio: ['ignore', fd ?? 'pipe', fd ?? 'pipe'],
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      ...(opts.env === undefined ? {} : { env: { ...process.env, ...opts.env } }),
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const p = adoptProc(name, child, opts);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
  return p;
}

export interface WaitReadyOptions {
  /** Give up after this long (default 60 s). */
  readonly timeoutMs?: number;
  /** Pause between checks (default 200 ms). */
  readonly intervalMs?: number;
}

/**
 * Calls `check` until it returns something other than `undefined` or `false` (returned), failing at
 * once if `proc` exits meanwhile and after `timeoutMs` otherwise; both errors carry the tail of
 * its output.
 */
export async function waitReady<T>(
  what: string,
  proc: Proc,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  opts: WaitReadyOptions = {},
): Promise<T> {
  const tail = (): string => proc.output().slice(-4000);
  try {
    return await eventually(
      what,
      async () => {
        if (proc.exited()) throw new Error(`${proc.name} exited (${String(proc.exitCode())}) while waiting for ${what}:\n${tail()}`);
        return await check();
      },
      { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: opts.intervalMs ?? 200 },
    );
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('timed out')) throw new Error(`${e.message}; ${proc.name} output:\n${tail()}`);
    throw e;
  }
}

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a binary to completion without blocking the event loop (SIGKILL after `timeoutMs`, default 30 s). */
export async function runBinary(
  binary: string,
  args: readonly string[],
  opts: { input?: string; cwd?: string; timeoutMs?: number; env?: Readonly<Record<string, string>> } = {},
): Promise<CliResult> {
  return await new Promise((resolve, reject) => {
    const env = opts.env === undefined ? process.env : { ...process.env, ...opts.env };
    const child = spawn(binary, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ status: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
