#!/usr/bin/env node
// Smoke run of every bench script (bench/*.ts) with tiny sizes, so a bench that no longer runs
// fails CI instead of rotting until the next measurement. Figures go to a temp dir
// (ZTWIM_BENCH_RESULTS), never to bench/results. Run by scripts/test-all.sh.
// Usage: node scripts/bench-smoke.mjs [name...]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withImageStamps } from './image-stamps.mjs';

const root = new URL('..', import.meta.url).pathname;
/** Tiny options per bench; a bench script without an entry here fails the smoke run. */
const SMOKE = {
  mint: ['--ms', '100', '--rounds', '1'],
  datastore: ['--entries', '5000'],
  server: ['--entries', '1000', '--only', 'sqlite', '--auth-calls', '2', '--source'],
  oidc: ['--duration', '1', '--rounds', '1', '--rotations', '1', '--connections', '2'],
  agent: ['--duration', '1', '--rounds', '1', '--only', 'ztwim', '--clients', '1', '--streams', '10', '--entries', '20', '--source'],
  // both agents pinned with taskset (one core, then two), the fetch rows only
  'agent-cores': ['--duration', '1', '--rounds', '1', '--clients', '1', '--kinds', 'jwt-cached', '--entries', '20', '--source'],
  // a diagnostic of bench/server.ts's first-answer row: one built server, no SPIRE, no profile written
  'first-answer-probe': ['--entries', '200', '--owned', '20', '--rounds', '1'],
  'agent-sync': ['--entries', '50', '--only', 'ztwim', '--source'],
  'agent-burst': ['--watchers', '20', '--jwt', '2', '--spread-watchers', '20', '--spread', '1', '--hold', '1', '--settle', '1', '--source'],
  'agent-memory': ['--entries', '1', '--streams', '0,10', '--load', '1', '--after', '1', '--clients', '1'],
  cli: ['--runs', '3'],
  sdk: ['--ms', '100', '--rounds', '1', '--calls', '5', '--source'],
  // `ztwim up` with its console, Debian's chromium (scripts/setup-interop.sh)
  console: ['--entries', '200', '--calls', '5', '--loads', '1'],
  // the CA rotation part waits out real timers: ztwim's CA prepares at half its TTL (30 s here,
  // 90 s in the bench), SPIRE's foreign bundle is polled every 15 s (its minimum refresh hint / 4)
  federation: ['--duration', '1', '--rounds', '1', '--connections', '2', '--rotations', '1', '--warmup', '0', '--ca-ttl', '30'],
  // Needs the shared Kubernetes test cluster (scripts/k8s/cluster.sh up, brought up if down).
  'k8s-workload-attestor': ['--pods', '1', '--calls', '5', '--spire-calls', '3'],
  // needs the project's Kubernetes test cluster (brought up by the bench, scripts/k8s/cluster.sh)
  'k8s-psat': ['--duration', '1', '--rounds', '1', '--concurrency', '1'],
  // starts a control-plane-only cluster of its own (test/k8s/lib/own-control-plane.ts)
  'k8s-informer': ['--pods', '100', '--churn', '100', '--nodes', '3'],
  // its own control-plane-only cluster (WITH_NODE=0), as the bench itself
  registrar: ['--pods', '20', '--nodes', '2', '--deletions', '1'],
  // the shared test cluster (brought up if down), the operator in its pod, the operator-test lock
  operator: ['--runs', '1', '--rest-min', '0'],
  // ztwim's side only (three servers, three agents, a PostgreSQL pair), events 1 s apart
  ha: ['--smoke'],
};
const all = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();
const missing = all.filter((n) => !(n in SMOKE));
if (missing.length > 0) {
  console.error(`bench-smoke: no smoke options for bench/${missing.join('.ts, bench/')}.ts; add them to scripts/bench-smoke.mjs`);
  process.exit(2);
}
const chosen = process.argv.length > 2 ? process.argv.slice(2) : all;
const out = mkdtempSync(join(tmpdir(), 'ztwim-bench-smoke-'));
const failed = [];
// The k8s benches build and import each test image once per run (test/k8s/lib/image.ts).
withImageStamps((env) => {
  try {
    for (const name of chosen) {
      const args = SMOKE[name];
      if (args === undefined) throw new Error(`unknown bench ${name}`);
      const t0 = Date.now();
      const r = spawnSync(process.execPath, ['--conditions=ztwim-source', '--import', 'tsx', join('bench', `${name}.ts`), ...args], {
        cwd: root,
        env: { ...env, ZTWIM_BENCH_RESULTS: out },
        encoding: 'utf8',
        timeout: 240_000,
      });
      const secs = ((Date.now() - t0) / 1000).toFixed(0);
      if (r.status !== 0) {
        failed.push(name);
        console.error(
          `bench-smoke: bench/${name}.ts ${args.join(' ')} failed (status ${r.status}${r.signal ? `, ${r.signal}` : ''}) after ${secs} s:\n${r.stdout}\n${r.stderr}`,
        );
      } else {
        console.log(`bench-smoke: bench/${name}.ts ${args.join(' ')}: ok in ${secs} s`);
      }
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
if (failed.length > 0) process.exit(1);
