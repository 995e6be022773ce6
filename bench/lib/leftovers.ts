// What a bench starts (server processes, temp dirs) is tracked here and removed whatever ends the
// bench: normal exit, a thrown error, Ctrl-C or SIGTERM.
import type { ChildProcess } from 'node:child_process';
import type { TmpDir } from '../../test/interop/lib/tmp.ts';

/** Running child processes: SIGKILLed at exit. */
export const live = new Set<ChildProcess>();
/** Temp dirs: removed at exit. */
export const tmpDirs = new Set<TmpDir>();

function cleanupSync(): void {
  for (const c of live) c.kill('SIGKILL');
  for (const d of tmpDirs) d.cleanup();
}

/** Installs the exit and signal handlers (once per process); `onSignal` logs before the cleanup. */
export function removeLeftoversOnExit(onSignal?: (sig: NodeJS.Signals) => void): void {
  process.once('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      onSignal?.(sig);
      cleanupSync();
      process.exit(130);
    });
  }
}
