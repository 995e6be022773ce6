import type { Readable, Writable } from 'node:stream';

/** The process edges a command uses, injectable for tests. */
export interface Env {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly stdin: Readable;
  readonly cwd: string;
  readonly vars: Readonly<Record<string, string | undefined>>;
  /** Aborted on SIGINT/SIGTERM for long-running commands. */
  readonly signal: AbortSignal;
}

export function print(w: Writable, text: string): void {
  w.write(text);
}

export function println(w: Writable, text = ''): void {
  w.write(text + '\n');
}
