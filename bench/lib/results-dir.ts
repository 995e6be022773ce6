// Where the bench scripts write their Markdown tables: bench/results, or $ZTWIM_BENCH_RESULTS
// (the smoke run in scripts/bench-smoke.mjs points it at a temp dir so the committed figures stay),
// and how a bench script's main function is run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function resultsDir(): string {
  const dir = process.env['ZTWIM_BENCH_RESULTS'] || join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes a results table `name` (e.g. `agent.md`) into {@link resultsDir}. */
export function writeResults(name: string, md: string): void {
  writeFileSync(join(resultsDir(), name), md);
}

/**
 * Runs a bench's `main` and exits: 0 when it resolves (the processes and timers it leaves are not
 * waited for), 1 with the error printed when it rejects.
 */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
