#!/usr/bin/env node
// Runs the test suites with node's own test runner, executing TypeScript sources through tsx.
// Usage: node scripts/test.mjs [unit|integration|interop|k8s|all] [extra file filters...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { withImageStamps } from './image-stamps.mjs';

const root = new URL('..', import.meta.url).pathname;
const suites = {
  unit: ['packages'],
  integration: ['test/integration'],
  interop: ['test/interop'],
  // The project's Kubernetes test cluster (scripts/k8s/cluster.sh, brought up by the tests).
  k8s: ['test/k8s'],
};

function walk(dir, out) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const [which = 'all', ...filters] = process.argv.slice(2);
const chosen = which === 'all' ? Object.keys(suites) : [which];
if (chosen.some((s) => !(s in suites))) {
  console.error(`unknown suite "${which}"; expected one of: all, ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
let files = chosen.flatMap((s) => suites[s].flatMap((d) => walk(join(root, d), [])));
if (filters.length > 0) files = files.filter((f) => filters.some((flt) => f.includes(flt)));
files.sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
console.log(`running ${files.length} test files: ${chosen.join(', ')}`);
const args = [
  '--conditions=ztwim-source',
  '--import',
  'tsx',
  // fast-check: FC_SEED / FC_PATH replay a property failure (scripts/fast-check-setup.mjs).
  '--import',
  './scripts/fast-check-setup.mjs',
  '--test',
  '--test-reporter=spec',
  `--test-concurrency=${process.env.ZTWIM_TEST_CONCURRENCY ?? '2'}`,
  ...files.map((f) => relative(root, f)),
];
// The Kubernetes suites build and import each test image once per run (test/k8s/lib/image.ts).
const r = withImageStamps((env) => spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env }));
process.exit(r.status ?? 1);
