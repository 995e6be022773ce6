#!/usr/bin/env -S node --max-semi-space-size=4
// The `ztwim` command. Runs the bundled CLI (packages/cli/dist/bundle, written by
// scripts/build-cli.mjs in `npm ci`/`npm run build`): a few files, each command group in its own
// chunks, so a command loads only the code it uses (bench/cli.ts).
//
// V8 flag on the first line (env -S splits it; GNU coreutils ≥ 8.30, BSD/macOS env): the young
// generation is capped at 4 MiB per semi-space instead of V8's 16. Node's HTTP/2 streams keep
// about a quarter of what a call allocates alive across a scavenge (their native handles are
// roots until a full GC), so a scavenge's pause grows with the semi-space: with 4 MiB the pauses
// are shorter (the agent's p99 under load drops) and a long-running agent or server keeps ~24 MiB
// less committed (bench/README.md). Measured throughput did not change. Benchmarks and the
// examples start ztwim with the flags of this line (test/interop/lib/peers.ts ztwimNodeFlags).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/bundle/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('Error: ztwim is not built; run `npm run build` in the repository first\n');
  process.exit(1);
}
await import(main.href);
