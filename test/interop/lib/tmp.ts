// Per-test temporary directories, removed by the returned cleanup.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TmpDir {
  path: string;
  /** Writes a file and returns its absolute path. */
  write(name: string, data: string | Uint8Array): string;
  file(name: string): string;
  cleanup(): void;
}

export function makeTmpDir(prefix = 'ztwim-interop-'): TmpDir {
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
