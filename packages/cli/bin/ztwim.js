#!/usr/bin/env node
// The `ztwim` command. Runs the bundled CLI (packages/cli/dist/bundle, written by
// scripts/build-cli.mjs in `npm ci`/`npm run build`): a few files, each command group in its own
// chunks, so a command loads only the code it uses (bench/cli.ts).
//
// No V8 flags on the first line. Node compiles its own modules (node:http2, node:tls,
// node:crypto, undici, ...) from a code cache built into the binary, and V8 accepts that cache
// only when the process runs with the V8 flags it was made with: with `--max-semi-space-size=4`
// here (as until 2026-12-06) every built-in module a command loads was compiled from source, about
// 70 ms more CPU for each `ztwim server entry show` and 60-80 ms more for `ztwim server run` to
// become healthy (bench/README.md, "CLI and server start-up"). V8 reads the semi-space size only at
// start, so the daemons now run with V8's default young generation (16 MiB semi-spaces): a
// long-running agent or server commits about 24 MiB more, and its scavenge pauses are longer. To
// trade start-up time back for that, run `node --max-semi-space-size=4 <this file> agent run ...`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/bundle/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('Error: ztwim is not built; run `npm run build` in the repository first\n');
  process.exit(1);
}
await import(main.href);
