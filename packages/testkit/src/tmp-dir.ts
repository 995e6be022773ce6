// Per-test temporary directories (sockets, SQLite files, key stores), removed by cleanup().
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TmpDir {
  readonly path: string;
  /** Writes a file and returns its absolute path. */
  write(name: string, data: string | Uint8Array): string;
  /** The absolute path of `name` in the directory (not created). */
  file(name: string): string;
  cleanup(): void;
}

/** A fresh directory under the OS temp dir. */
export function makeTmpDir(prefix = 'ztwim-test-'): TmpDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    write(name, data) {
      const p = join(path, name);
      writeFileSync(p, data);
      return p;
    },
    file(name) {
      return join(path, name);
    },
    cleanup() {
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` with a fresh temp dir, removed afterwards however `fn` ends. */
export async function withTmpDir<T>(fn: (dir: TmpDir) => Promise<T>, prefix?: string): Promise<T> {
  const dir = makeTmpDir(prefix);
  try {
    return await fn(dir);
  } finally {
    dir.cleanup();
  }
}
