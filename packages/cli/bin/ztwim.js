#!/usr/bin/env node
// The `ztwim` command. Runs the compiled CLI (built by `npm ci`/`npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('Error: ztwim is not built; run `npm run build` in the repository first\n');
  process.exit(1);
}
await import(main.href);
