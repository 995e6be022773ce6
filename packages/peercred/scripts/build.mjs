#!/usr/bin/env node
// Builds the N-API addon from source with node-gyp, against the headers of the Node that runs us.
// node-gyp cannot download headers in our build environments, so we point it at the installed
// Node's own headers (<prefix>/include/node) when they exist, else honour npm_config_nodedir.
// Run as the package's `install` script (so `npm ci` builds it) or by hand: node scripts/build.mjs
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = dirname(dirname(fileURLToPath(import.meta.url)));

function nodeDir() {
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  const fromNpm = process.env.npm_config_nodedir;
  if (fromNpm !== undefined && fromNpm !== '') return fromNpm;
  return undefined;
}

function nodeGypBin() {
  // 1. a node-gyp installed for this workspace (devDependency), 2. the one bundled with npm.
  const require = createRequire(join(pkgDir, 'package.json'));
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // fall through
  }
  const candidates = [];
  if (process.env.npm_execpath) {
    // npm_execpath = <npm>/bin/npm-cli.js
    candidates.push(join(dirname(dirname(process.env.npm_execpath)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  const prefix = dirname(dirname(process.execPath));
  candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => existsSync(c));
}

const gyp = nodeGypBin();
if (gyp === undefined) {
  console.error('peercred: node-gyp not found (install it or use the npm that bundles it)');
  process.exit(1);
}
const dir = nodeDir();
const args = [gyp, 'rebuild'];
if (dir !== undefined) args.push(`--nodedir=${dir}`);
else console.error('peercred: no local node headers found; node-gyp will try to download them');
const r = spawnSync(process.execPath, args, { cwd: pkgDir, stdio: 'inherit' });
if (r.error) {
  console.error(`peercred: cannot run node-gyp: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
