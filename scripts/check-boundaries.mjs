#!/usr/bin/env node
// Enforces the architecture's import rules at build time (tsc alone would let any workspace
// import any other through the hoisted node_modules):
//  1. a package imports another @ztwim package only if it lists it in its package.json, and
//  2. the listed dependencies follow the layering below (the SDK imports nothing of ours;
//     server, agent, oidc, csi, registrar and operator never import each other; testkit only from test files).
//  3. test/ and bench/ import the packages by name (`@ztwim/server`), never by a relative path into
//     packages/*/src: what they use is a package's public surface (index.ts, or a subpath export).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const allowed = {
  spiffe: [],
  proto: [],
  peercred: [],
  core: ['spiffe'],
  testkit: ['spiffe', 'core'],
  k8s: ['spiffe', 'core'],
  acme: ['core'],
  server: ['spiffe', 'core', 'proto', 'k8s', 'acme'],
  agent: ['spiffe', 'core', 'proto', 'peercred', 'k8s'],
  oidc: ['spiffe', 'core', 'proto', 'acme'],
  console: ['spiffe', 'core', 'proto', 'agent'],
  csi: ['core', 'proto'],
  registrar: ['spiffe', 'core', 'proto', 'k8s'],
  operator: ['spiffe', 'core', 'k8s'],
  cli: ['spiffe', 'core', 'proto', 'acme', 'server', 'agent', 'oidc', 'console', 'csi', 'peercred', 'k8s', 'registrar', 'operator'],
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
  // the SDK's fake Workload API and test CA, re-exported for tests as @ztwim/testkit/workload-api
  'spiffe/testing': ['testkit'],
  // a PostgreSQL primary with a streaming replica, for fail-over tests and benches (test files only)
  'testkit/pg-replica': [],
  // the process harness of the interop tests and benches: spawn, wait until ready, collect output, stop
  'testkit/procs': [],
  // explain's pure logic, without the console's HTTP server (`ztwim explain`)
  'console/explain': ['cli'],
  // the `console { }` config block, read while `ztwim server run` loads its config
  'console/config': ['cli'],
};
const importRe =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](@ztwim\/[a-z0-9-]+(?:\/[a-z0-9-]+)*)['"]|import\(\s*['"](@ztwim\/[a-z0-9-]+(?:\/[a-z0-9-]+)*)['"]\s*\)|(?:^|\n)\s*import\s+['"](@ztwim\/[a-z0-9-]+(?:\/[a-z0-9-]+)*)['"]/g;

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
  try {
    pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  } catch {
    continue;
  }
  const rules = allowed[dir];
  if (rules === undefined) {
    problems.push(`packages/${dir}: no layering rule in scripts/check-boundaries.mjs`);
    continue;
  }
  const declared = new Set(
    Object.keys({ ...pkg.dependencies })
      .filter((d) => d.startsWith('@ztwim/'))
      .map((d) => d.slice(7)),
  );
  const devDeclared = new Set(
    Object.keys({ ...pkg.devDependencies })
      .filter((d) => d.startsWith('@ztwim/'))
      .map((d) => d.slice(7)),
  );
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
        else if (!users.includes(dir))
          problems.push(`${relative(root, file)}: @ztwim/${dir} must not import @ztwim/${spec} (allowed for: ${users.join(', ')})`);
      }
      if (target === dir) {
        problems.push(`${relative(root, file)}: imports its own package by name`);
        continue;
      }
      if (target === 'testkit') {
        if (!isTest && dir !== 'testkit') problems.push(`${relative(root, file)}: only tests may import @ztwim/testkit`);
        continue;
      }
      if (!rules.includes(target)) problems.push(`${relative(root, file)}: @ztwim/${dir} must not import @ztwim/${target}`);
      else if (!declared.has(target) && !devDeclared.has(target))
        problems.push(`${relative(root, file)}: imports @ztwim/${target} but packages/${dir}/package.json does not list it`);
    }
  }
}
// Rule 3. Files that still reach into a package's sources, each with what would take it off the list.
const reachInAllowed = new Map([
  // ServerClient/attestAgent/createCsr are not exported by @ztwim/agent yet (the agent's client is being split, issue #14 ask 2).
  ['bench/server.ts', 'agent client'],
  ['bench/first-answer-probe.ts', 'agent client'],
  ['test/integration/server-entry-batch.test.ts', 'agent client'],
  // and the server's PostgreSQL test-cluster helper and node cache age (not exported by @ztwim/server).
  ['test/integration/ha-servers-postgres.test.ts', 'agent client'],
  ['test/integration/ha-postgres-failover.test.ts', 'agent client'],
  ['test/integration/agent-failover.test.ts', 'PostgreSQL test-cluster helper'],
  ['test/interop/lib/agent-endpoint.ts', 'agent client'],
  ['test/interop/lib/authz-matrix.ts', 'agent client'],
  ['test/interop/lib/signing-flood.ts', 'agent client'],
  ['test/interop/server-agent-svid-vs-spire.test.ts', 'agent client'],
  // Test helpers of a package that belong in @ztwim/testkit (raw HTTP/2 client, fixtures).
  ['test/interop/java-spiffe.test.ts', 'proto testing helpers'],
  ['test/interop/operator-render-configs.test.ts', 'operator fixtures'],
  ['test/k8s/operator-api-crds.test.ts', 'operator fixtures'],
]);
const relImportRe =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"](\.{1,2}\/[^'"]+)['"]/g;
const pkgNames = new Set(Object.keys(allowed));
for (const top of ['test', 'bench']) {
  for (const file of walk(join(root, top))) {
    if (file.includes(`${join(root, top)}/go/`) || file.includes('/interop/go/') || file.includes('/interop/java/')) continue;
    const src = readFileSync(file, 'utf8');
    const rel = relative(root, file);
    let reaches = false;
    for (const m of src.matchAll(relImportRe)) {
      const target = relative(root, resolve(dirname(file), m[1] ?? m[2] ?? m[3]));
      if (/^packages\/[^/]+\/src\//.test(target)) {
        reaches = true;
        if (!reachInAllowed.has(rel)) problems.push(`${rel}: imports ${target} by path; import the package by name (@ztwim/...) instead`);
      }
    }
    if (!reaches && reachInAllowed.has(rel))
      problems.push(`${rel}: no longer imports package sources by path; remove it from reachInAllowed in scripts/check-boundaries.mjs`);
    for (const m of src.matchAll(importRe)) {
      const target = (m[1] ?? m[2] ?? m[3]).slice(7).split('/')[0];
      if (!pkgNames.has(target)) problems.push(`${rel}: imports @ztwim/${target}, which is not a package of this repository`);
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
