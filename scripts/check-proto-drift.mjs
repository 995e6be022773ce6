#!/usr/bin/env node
// Fails when packages/proto/src/gen differs from what the .proto files generate.
// Regenerates with the same buf.gen.yaml into a temp dir (offline: local protoc-gen-es,
// no BSR dependencies) and compares file lists and contents.
// Fix a failure with `npm run -w @ztwim/proto generate` and commit the result.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const pkg = join(root, 'packages', 'proto');
const committed = join(pkg, 'src', 'gen');

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

const tmp = mkdtempSync(join(tmpdir(), 'ztwim-proto-drift-'));
try {
  const bin = join(root, 'node_modules', '.bin');
  const r = spawnSync(join(bin, 'buf'), ['generate', '-o', tmp], {
    cwd: pkg,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` },
  });
  if (r.status !== 0) {
    console.error(`check-proto-drift: buf generate failed (status ${r.status}):\n${r.stderr}${r.stdout}`);
    process.exit(2);
  }
  const fresh = join(tmp, 'src', 'gen');
  const want = list(fresh);
  const have = list(committed);
  const problems = [];
  for (const f of want) if (!have.includes(f)) problems.push(`missing: src/gen/${f}`);
  for (const f of have) if (!want.includes(f)) problems.push(`stale: src/gen/${f}`);
  for (const f of want) {
    if (have.includes(f) && readFileSync(join(fresh, f), 'utf8') !== readFileSync(join(committed, f), 'utf8')) {
      problems.push(`differs: src/gen/${f}`);
    }
  }
  if (problems.length > 0) {
    console.error(`check-proto-drift: generated code is out of date:\n  ${problems.join('\n  ')}\nrun \`npm run -w @ztwim/proto generate\``);
    process.exit(1);
  }
  console.log(`check-proto-drift: ${want.length} generated files up to date`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
