#!/usr/bin/env node
// Enforces the architecture's import rules at build time (tsc alone would let any workspace
// import any other through the hoisted node_modules):
//  1. a package imports another @ztwim package only if it lists it in its package.json, and
//  2. the listed dependencies follow the layering below (the SDK imports nothing of ours;
//     server, agent, oidc, csi, registrar and operator never import each other; testkit only from test files).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const allowed = {
  spiffe: [],
  proto: [],
  peercred: [],
  core: ['spiffe'],
  testkit: ['spiffe', 'core'],
  k8s: ['spiffe', 'core'],
  server: ['spiffe', 'core', 'proto', 'k8s'],
  agent: ['spiffe', 'core', 'proto', 'peercred', 'k8s'],
  oidc: ['spiffe', 'core', 'proto'],
  csi: ['core', 'proto'],
  registrar: ['spiffe', 'core', 'proto', 'k8s'],
  operator: ['spiffe', 'core', 'k8s'],
  cli: ['spiffe', 'core', 'proto', 'server', 'agent', 'oidc', 'csi', 'peercred', 'k8s', 'registrar', 'operator'],
};
/**
 * Entry points other than a package's main one (`@ztwim/<pkg>/<subpath>`), each allowed
 * explicitly: the package exports it in its package.json, and the importing packages named here
 * (beside the layering above) may use it. A subpath keeps a small piece of a package apart from its
 * barrel, so that importing it does not load the rest (the agent's kubelet client needs the HTTP
 * exchange, not the Kubernetes API client, informers and leader election).
 */
const allowedSubpaths = {
  'spiffe/internal': ['core', 'server'],
  'k8s/http-exchange': ['agent'],
  'agent/k8s-workload-attestor': [],
};
const importRe = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](@ztwim\/[a-z0-9-]+(?:\/[a-z0-9-]+)*)['"]|import\(\s*['"](@ztwim\/[a-z0-9-]+(?:\/[a-z0-9-]+)*)['"]\s*\)|(?:^|\n)\s*import\s+['"](@ztwim\/[a-z0-9-]+(?:\/[a-z0-9-]+)*)['"]/g;

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

const problems = [];
for (const dir of readdirSync(join(root, 'packages'))) {
  const pkgDir = join(root, 'packages', dir);
  let pkg;
  try { pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')); } catch { continue; }
  const rules = allowed[dir];
  if (rules === undefined) { problems.push(`packages/${dir}: no layering rule in scripts/check-boundaries.mjs`); continue; }
  const declared = new Set(Object.keys({ ...pkg.dependencies }).filter((d) => d.startsWith('@ztwim/')).map((d) => d.slice(7)));
  const devDeclared = new Set(Object.keys({ ...pkg.devDependencies }).filter((d) => d.startsWith('@ztwim/')).map((d) => d.slice(7)));
  for (const d of declared) if (!rules.includes(d)) problems.push(`packages/${dir}/package.json: must not depend on @ztwim/${d}`);
  for (const file of walk(join(pkgDir, 'src'))) {
    const src = readFileSync(file, 'utf8');
    const isTest = /\.test(-suite|-util)?\.ts$/.test(file) || file.includes('/testdata/');
    for (const m of src.matchAll(importRe)) {
      const spec = (m[1] ?? m[2] ?? m[3]).slice(7);
      const [target, ...sub] = spec.split('/');
      if (sub.length > 0 && !isTest) {
        const users = allowedSubpaths[spec];
        if (users === undefined) problems.push(`${relative(root, file)}: imports @ztwim/${spec}, a subpath scripts/check-boundaries.mjs does not allow`);
        else if (!users.includes(dir)) problems.push(`${relative(root, file)}: @ztwim/${dir} must not import @ztwim/${spec} (allowed for: ${users.join(', ')})`);
      }
      if (target === dir) { problems.push(`${relative(root, file)}: imports its own package by name`); continue; }
      if (target === 'testkit') {
        if (!isTest && dir !== 'testkit') problems.push(`${relative(root, file)}: only tests may import @ztwim/testkit`);
        continue;
      }
      if (!rules.includes(target)) problems.push(`${relative(root, file)}: @ztwim/${dir} must not import @ztwim/${target}`);
      else if (!declared.has(target) && !devDeclared.has(target)) problems.push(`${relative(root, file)}: imports @ztwim/${target} but packages/${dir}/package.json does not list it`);
    }
  }
}
for (const spec of Object.keys(allowedSubpaths)) {
  const [pkgName, ...sub] = spec.split('/');
  const exportsOf = JSON.parse(readFileSync(join(root, 'packages', pkgName, 'package.json'), 'utf8')).exports ?? {};
  if (exportsOf[`./${sub.join('/')}`] === undefined) problems.push(`packages/${pkgName}/package.json: allowed subpath @ztwim/${spec} is not in its exports`);
}
if (problems.length > 0) {
  console.error('architecture boundary violations:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log('boundaries ok');
