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
  /**
   * Called once by a daemon command when it serves (`server run`: once the server is healthy),
   * before it changes V8 flags: bin/ztwim.js saves the V8 code cache of the server bundle then.
   */
  readonly started?: () => void;
}

export function print(w: Writable, text: string): void {
  w.write(text);
}

export function println(w: Writable, text = ''): void {
  w.write(text + '\n');
}
