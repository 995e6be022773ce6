#!/usr/bin/env node
// Builds the console's web app (packages/console/web) into packages/console/dist/web/: type-checks
// app.ts against the DOM (its own tsconfig), bundles it with esbuild (preact + htm, minified, one
// ES module: the page's CSP allows scripts from 'self' only), and copies index.html and app.css.
// Part of `npm run build`; build-cli.mjs copies the result beside the CLI bundle.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const web = join(root, 'packages', 'console', 'web');
const out = join(root, 'packages', 'console', 'dist', 'web');

execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(web, 'tsconfig.json')], { stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: [join(web, 'app.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const f of ['index.html', 'app.css']) copyFileSync(join(web, f), join(out, f));
