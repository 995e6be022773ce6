#!/usr/bin/env node
// Mutation testing of the security-critical modules with StrykerJS (stryker.config.mjs;
// docs/mutation-testing.md). Incremental by default: only mutants whose code or covering tests
// changed since test/mutation/stryker-incremental.json are run again; the rest keep their
// recorded result. Prints the score per file and in total, and fails (exit 1) when the total
// is below the threshold.
//
//   node scripts/mutation.mjs                    # incremental run, threshold (see below)
//   node scripts/mutation.mjs --force            # every mutant again (cold run), file rewritten
//   node scripts/mutation.mjs --mutate <glob>... # only these files (no threshold on a subset)
//   MUTATION_THRESHOLD=85 node scripts/mutation.mjs
// The default threshold is the committed baseline's score (75.57 %, docs/mutation-testing.md), so
// CI fails when it drops; the target is 90 %, to be raised to as survivors are killed.
import { Stryker } from '@stryker-mutator/core';

const args = process.argv.slice(2);
const force = args.includes('--force');
const mutateAt = args.indexOf('--mutate');
const subset = mutateAt >= 0 ? args.slice(mutateAt + 1).filter((a) => !a.startsWith('--')) : [];
const threshold = Number(process.env.MUTATION_THRESHOLD ?? '75');

const started = Date.now();
const overrides = { force, ...(subset.length > 0 ? { mutate: subset } : {}) };
const results = await new Stryker(overrides).runMutationTest();
const seconds = ((Date.now() - started) / 1000).toFixed(0);

// Stryker's mutation score: detected (killed, timeout) over valid mutants (detected, survived,
// no coverage); ignored, compile and runtime errors do not count.
const perFile = new Map();
for (const r of results) {
  const f = perFile.get(r.fileName) ?? { detected: 0, undetected: 0, survivors: [] };
  if (r.status === 'Killed' || r.status === 'Timeout') f.detected++;
  else if (r.status === 'Survived' || r.status === 'NoCoverage') {
    f.undetected++;
    f.survivors.push(`${r.location.start.line}:${r.location.start.column + 1} ${r.mutatorName} ${r.status}`);
  }
  perFile.set(r.fileName, f);
}
let detected = 0;
let valid = 0;
for (const [file, f] of [...perFile].sort()) {
  detected += f.detected;
  valid += f.detected + f.undetected;
  const score = f.detected + f.undetected === 0 ? 100 : (100 * f.detected) / (f.detected + f.undetected);
  console.log(
    `${score.toFixed(1).padStart(6)} %  ${String(f.detected).padStart(4)}/${String(f.detected + f.undetected).padEnd(4)} ${file.replace(process.cwd() + '/', '')}`,
  );
}
const total = valid === 0 ? 100 : (100 * detected) / valid;
console.log(`mutation score ${total.toFixed(2)} % (${detected}/${valid} mutants detected) in ${seconds} s; threshold ${threshold} %`);
if (subset.length === 0 && total < threshold) {
  console.error(`mutation score ${total.toFixed(2)} % is below the threshold ${threshold} %`);
  process.exit(1);
}
