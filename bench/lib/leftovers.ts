// The temp dirs a bench makes are tracked here and removed whatever ends the bench: normal exit, a
// thrown error, Ctrl-C or SIGTERM. Its processes are the harness's (@ztwim/testkit/procs), which
// SIGKILLs those still running when the bench exits.
import type { TmpDir } from '../../test/interop/lib/tmp.ts';

/** Temp dirs: removed at exit. */
export const tmpDirs = new Set<TmpDir>();

function cleanupSync(): void {
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
