#!/usr/bin/env node
// Runs the benchmarks in bench/*.ts one after the other, each in its own Node process through tsx.
// Usage: node scripts/bench.mjs [name...] [-- args passed to every script]
//   node scripts/bench.mjs                    # all of them (mint, datastore, oidc, server, ...)
//   node scripts/bench.mjs server datastore   # a subset, by file name without .ts
//   node scripts/bench.mjs server -- --entries 10000
// Each script writes bench/results/<name>.md. Benches share the machine: run one set at a time
// (e.g. `flock /tmp/ztwim-bench.lock npm run bench`).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const benchDir = join(root, 'bench');
const all = readdirSync(benchDir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('.'))
  .map((f) => f.slice(0, -3))
  .sort();

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const names = dash >= 0 ? argv.slice(0, dash) : argv;
const passThrough = dash >= 0 ? argv.slice(dash + 1) : [];
const unknown = names.filter((n) => !all.includes(n.replace(/\.ts$/, '')));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; expected some of: ${all.join(', ')}`);
  process.exit(2);
}
const chosen = names.length === 0 ? all : names.map((n) => n.replace(/\.ts$/, ''));

const failed = [];
for (const name of chosen) {
  console.log(`\n=== bench/${name}.ts ${passThrough.join(' ')}`.trimEnd());
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--conditions=ztwim-source', '--import', 'tsx', join('bench', `${name}.ts`), ...passThrough], {
    cwd: root,
    stdio: 'inherit',
  });
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  if (r.status !== 0) {
    failed.push(name);
    console.error(`=== bench/${name}.ts failed (status ${r.status ?? r.signal}) after ${secs} s`);
  } else {
    console.log(`=== bench/${name}.ts done in ${secs} s`);
  }
}
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(', ')}`);
  process.exit(1);
}
