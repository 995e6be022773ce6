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
//
// `ztwim server run` loads one CommonJS file instead (server-run.cjs; `agent run` agent-run.cjs), compiled with a V8 code
// cache: Node 20 keeps no compiled code for ES modules, and resolving and compiling the ~30 chunks
// of a server start took about half of its CPU time (bench/results/server-start.md). The first
// start saves the cache once the server is healthy, so it holds the code a start runs; later
// starts compile nothing of it. The cache is a file per bundle text (server-run.json's SHA-256),
// Node version and CPU architecture, beside the bundle or, where that is not writable, under
// $XDG_CACHE_HOME/ztwim (~/.cache/ztwim), or in $ZTWIM_CODE_CACHE_DIR when set; V8 itself refuses a cache made by another V8 or under
// other V8 flags, and a refused one is replaced. ZTWIM_CODE_CACHE=0 runs `server run` from the ES
// modules like every other command. NODE_DEBUG=ztwim prints what happened to the cache.
//
// `agent run` takes that route only with ZTWIM_CODE_CACHE=1: it starts in about 30 % less CPU
// from its cached file, but holds about 11 MiB more resident memory for its whole life (idle agent,
// 1 entry: 74 vs 63 MiB, bench/agent-memory.ts beside SPIRE's 56, 2026-12-07), and an agent runs on
// every node, where its memory counts more than its start (issue #22). The server keeps the cache
// by default: its start is what users wait for (issue #13), and at rest it stays below SPIRE's
// server.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { debuglog } from 'node:util';
import { constants as vmConstants, Script } from 'node:vm';

const bundleDir = fileURLToPath(new URL('../dist/bundle/', import.meta.url));
const main = join(bundleDir, 'main.js');
if (!existsSync(main)) {
  process.stderr.write('Error: ztwim is not built; run `npm run build` in the repository first\n');
  process.exit(1);
}

const debug = debuglog('ztwim');

/** Where server-run.cjs's V8 code cache is read from and written to, in that order. */
function cacheDirs() {
  const own = process.env['ZTWIM_CODE_CACHE_DIR'];
  if (own !== undefined && own !== '') return [own];
  const xdg = process.env['XDG_CACHE_HOME'];
  return [bundleDir, join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'ztwim')];
}

/** Writes `data` to `dir/name` (temp file + rename), removing older caches (`prefix….v8cache`); false where it cannot. */
function saveCache(dir, name, prefix, data) {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(tmp, data, { mode: 0o644 });
    renameSync(tmp, join(dir, name));
  } catch (e) {
    debug('code cache: cannot write %s: %s', join(dir, name), e.message);
    rmSync(tmp, { force: true });
    return false;
  }
  for (const f of readdirSync(dir)) if (f.startsWith(prefix) && f.endsWith('.v8cache') && f !== name) rmSync(join(dir, f), { force: true });
  debug('code cache: wrote %s (%d bytes)', join(dir, name), data.length);
  return true;
}

/** Runs `ztwim server run` / `agent run` from `base`.cjs with its code cache; false if that file is not there. */
function runFromScript(base) {
  const manifestFile = join(bundleDir, `${base}.json`);
  if (!existsSync(manifestFile)) return false;
  const { file: name, sha256 } = JSON.parse(readFileSync(manifestFile, 'utf8'));
  const file = join(bundleDir, name);
  const prefix = `${base}.cjs-`;
  const cacheName = `${prefix}${sha256.slice(0, 16)}-${process.version}-${process.arch}.v8cache`;
  let cachedData;
  for (const dir of cacheDirs()) {
    try {
      cachedData = readFileSync(join(dir, cacheName));
      break;
    } catch {
      // not cached there
    }
  }
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), {
    filename: file,
    ...(cachedData === undefined ? {} : { cachedData }),
    // The bundle's import() of external packages (@kubernetes/client-node, acme-client) goes to Node's loader.
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  debug('code cache: %s', cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'used');
  // The bundle's import() calls go through this (see scripts/build-cli.mjs): Node 20 loses the
  // script's importModuleDynamically when it is compiled from a cache another process wrote.
  globalThis.__ztwimDynamicImport = (specifier) => import(specifier);
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  const started =
    cachedData === undefined || script.cachedDataRejected
      ? () => {
          const data = script.createCachedData();
          cacheDirs().some((dir) => saveCache(dir, cacheName, prefix, data));
        }
      : undefined;
  mod.exports.main(started);
  return true;
}

const daemon = (process.argv[2] === 'server' || process.argv[2] === 'agent') && process.argv[3] === 'run' ? `${process.argv[2]}-run` : undefined;
const cacheSetting = process.env['ZTWIM_CODE_CACHE'];
const useCodeCache = daemon === 'server-run' ? cacheSetting !== '0' : cacheSetting === '1';
if (daemon !== undefined && useCodeCache && runFromScript(daemon)) {
  // runs until the daemon stops (server-run-main.ts / agent-run-main.ts exit the process)
} else {
  await import(pathToFileURL(main).href);
}
