import { PassThrough, Readable } from 'node:stream';
import { runCommand, type Command } from './command.ts';
import type { Env } from './env.ts';

/** What a command printed and its exit status. */
export interface CapturedRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command tree in-process (the same code path as the `ztwim` binary) with `input` on
 * stdin, collecting stdout and stderr: for embedding the CLI and for tests.
 */
export async function runCaptured(
  root: Command,
  argv: readonly string[],
  opts: { readonly input?: string; readonly cwd?: string; readonly vars?: Env['vars']; readonly signal?: AbortSignal } = {},
): Promise<CapturedRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const status = await runCommand(root, argv, {
    stdout,
    stderr,
    stdin: Readable.from([Buffer.from(opts.input ?? '')]),
    cwd: opts.cwd ?? process.cwd(),
    vars: opts.vars ?? process.env,
    signal: opts.signal ?? new AbortController().signal,
  });
  return { status, stdout: out, stderr: err };
}
