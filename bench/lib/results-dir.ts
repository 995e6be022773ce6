// Where the bench scripts write their Markdown tables: bench/results, or $ZTWIM_BENCH_RESULTS
// (the smoke run in scripts/bench-smoke.mjs points it at a temp dir so the committed figures stay).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function resultsDir(): string {
  const dir = process.env['ZTWIM_BENCH_RESULTS'] || join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
  mkdirSync(dir, { recursive: true });
  return dir;
}
