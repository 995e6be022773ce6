#!/usr/bin/env node
// Fails when generated protobuf code differs from what the .proto files generate: the proto
// package's src/gen and the SDK's own copy of the Workload API in packages/spiffe/src/workload/proto
// (the SDK imports no other @ztwim package, so it has its own; both come from
// packages/proto/proto). Regenerates each with its package's buf.gen.yaml into a temp dir
// (offline: local protoc-gen-es, no BSR dependencies) and compares file lists and contents.
// Run by `npm run build`. Fix a failure with `npm run -w <package> generate` and commit the result.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
/** Each package with a buf.gen.yaml, and the directory its output is committed in. */
const targets = [
  { workspace: '@ztwim/proto', pkg: join(root, 'packages', 'proto'), out: join('src', 'gen') },
  { workspace: '@ztwim/spiffe', pkg: join(root, 'packages', 'spiffe'), out: join('src', 'workload', 'proto') },
];

function list(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

const bin = join(root, 'node_modules', '.bin');
let failed = false;
for (const t of targets) {
  const tmp = mkdtempSync(join(tmpdir(), 'ztwim-proto-drift-'));
  try {
    const r = spawnSync(join(bin, 'buf'), ['generate', '-o', tmp], {
      cwd: t.pkg,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` },
    });
    if (r.status !== 0) {
      console.error(`check-proto-drift: ${t.workspace}: buf generate failed (status ${r.status}):\n${r.stderr}${r.stdout}`);
      process.exit(2);
    }
    const fresh = join(tmp, t.out);
    const committed = join(t.pkg, t.out);
    const want = list(fresh);
    const have = list(committed);
    const problems = [];
    for (const f of want) if (!have.includes(f)) problems.push(`missing: ${join(t.out, f)}`);
    for (const f of have) if (!want.includes(f)) problems.push(`stale: ${join(t.out, f)}`);
    for (const f of want) {
      if (have.includes(f) && readFileSync(join(fresh, f), 'utf8') !== readFileSync(join(committed, f), 'utf8')) problems.push(`differs: ${join(t.out, f)}`);
    }
    if (problems.length > 0) {
      failed = true;
      console.error(
        `check-proto-drift: ${t.workspace}: generated code is out of date:\n  ${problems.join('\n  ')}\nrun \`npm run -w ${t.workspace} generate\``,
      );
    } else {
      console.log(`check-proto-drift: ${t.workspace}: ${want.length} generated files up to date`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
if (failed) process.exit(1);
