#!/usr/bin/env node
// Bundles the `ztwim` command (packages/cli/src/main.ts and the TypeScript sources of every
// @ztwim package it uses) with esbuild into packages/cli/dist/bundle/, which bin/ztwim.js runs.
// Part of `npm run build`, after `tsc -b` has type-checked everything.
//
// Why: loaded module by module (tsc's output), a command paid ~0.5 s before doing anything
// resolving and compiling ~600 files it mostly never used. Bundled, a command reads a handful of
// files, and code splitting keeps each command group's code in its own chunks: the command table
// (root.ts, commands/server/index.ts, commands/agent-group.ts) imports each group with import(),
// so `ztwim server entry show` loads the admin client and never the server, agent, OIDC,
// datastore or X.509 libraries. bench/cli.ts measures it.
//
// Barrel files (a package's src/index.ts, which only re-exports): esbuild's code splitting
// assigns a file to the chunks of every entry that imports it, following all re-exports of a
// barrel, so one `import { isZtwimError } from '@ztwim/core'` would put the logger, metrics and
// config parser in the chunk every command loads. The plugin below rewrites named imports from a
// barrel into imports from the files that define them (what the barrel re-exports, followed
// through nested barrels), so the chunk graph follows what each module really uses. Written here
// because esbuild has no such option; it only touches `import { ... } from` statements and leaves
// anything it cannot map importing from the barrel as before.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as esbuild from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const packagesDir = join(root, 'packages');
const defaultOutdir = join(packagesDir, 'cli', 'dist', 'bundle');

/**
 * Packages left to Node's own resolution at run time: native addons (better-sqlite3,
 * @ztwim/peercred), packages that find files or workers by path (pino's transports, pg's
 * optional pg-native, acme-client) and the decorator-based X.509 library with its
 * reflect-metadata polyfill (loaded only by `server x509 mint` and x509pop), and the Kubernetes
 * client (@ztwim/k8s imports it only when a k8s plugin is configured; ~40 CommonJS and ESM
 * packages with optional native and websocket parts, which gain nothing from bundling).
 * Everything else is bundled.
 */
export const EXTERNAL_PACKAGES = ['better-sqlite3', 'pg', 'acme-client', '@peculiar/x509', 'reflect-metadata', '@ztwim/peercred', '@kubernetes/client-node'];

/**
 * server-run.cjs (and agent-run.cjs) bundle better-sqlite3's JavaScript too (its compiled addon stays a file, loaded
 * by path: the SQLite datastore passes `nativeBinding`), so the start compiles that code from the
 * V8 code cache instead of resolving and compiling its dozen files from source.
 */
const DAEMON_EXTERNAL_PACKAGES = EXTERNAL_PACKAGES.filter((p) => p !== 'better-sqlite3');

const RE_EXPORT = /export\s+(type\s+)?\{([^}]*)\}\s*from\s*['"]([^'"]+)['"]/g;
const NAMED_IMPORT =
  /import\s*\{([^}]*)\}\s*from\s*['"](@ztwim\/[a-z0-9-]+|@connectrpc\/connect(?:-node)?(?:\/[a-z-]+)?|@bufbuild\/protobuf(?:\/[a-z0-9-]+)?|\.\.?\/[^'"]*index\.[tj]s)['"]\s*;?/g;

/**
 * npm packages whose barrels are rewritten too (ESM builds made of `export { … } from` index
 * files, `"sideEffects": false`): without it one `import { ConnectError } from
 * '@connectrpc/connect'` puts connect's server-side router and handlers, and connect-node's
 * node:http/node:https client, in the chunk every RPC command loads.
 */
const BARREL_PACKAGES = ['@connectrpc/connect', '@connectrpc/connect-node', '@bufbuild/protobuf'];

const stripComments = (s) => s.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');

/** `a`, `b as c`, `type d` → [{ name, alias, typeOnly }]. */
function specifiers(list) {
  return stripComments(list)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const typeOnly = /^type\s/.test(s);
      const [name, alias = name] = s
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)
        .map((x) => x.trim());
      return { name, alias, typeOnly };
    });
}

/**
 * Source file of a workspace package's main entry (its `ztwim-source` export), or the ESM file of
 * a BARREL_PACKAGES entry point (`@connectrpc/connect/protocol-grpc` → its `import` export).
 */
function packageEntry(spec) {
  if (spec.startsWith('@ztwim/')) {
    const dir = join(packagesDir, spec.slice('@ztwim/'.length));
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const src = pkg.exports?.['.']?.['ztwim-source'];
    return typeof src === 'string' ? resolve(dir, src) : undefined;
  }
  const name = BARREL_PACKAGES.find((p) => spec === p || spec.startsWith(`${p}/`));
  if (name === undefined) return undefined;
  const dir = join(root, 'node_modules', name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const src = pkg.exports?.[`.${spec.slice(name.length)}`]?.import;
  return typeof src === 'string' ? resolve(dir, src) : undefined;
}

const barrels = new Map();

/** exported name → { file, name } for a file made only of `export { … } from` lines, else undefined. */
function barrelMap(file) {
  if (barrels.has(file)) return barrels.get(file);
  let map;
  const text = readFileSync(file, 'utf8');
  // `export * from` lines are allowed; in an npm package's ESM barrel (.js) the names its targets
  // declare (`export function|const|let|var|class NAME`) are mapped too (@bufbuild/protobuf's
  // codegenv2 and wkt barrels are made only of them), else they are not (imports of those stay).
  const rest = stripComments(text)
    .replace(RE_EXPORT, '')
    .replace(/export\s*\*\s*from\s*['"][^'"]+['"]/g, '')
    .replace(/export\s*\{\s*\}\s*;?/g, '')
    .replace(/[;\s]/g, '');
  if (rest === '') {
    map = new Map();
    for (const m of text.matchAll(RE_EXPORT)) {
      if (m[1] !== undefined) continue;
      const target = resolve(dirname(file), m[3]);
      for (const s of specifiers(m[2])) if (!s.typeOnly) map.set(s.alias, { file: target, name: s.name });
    }
    if (file.endsWith('.js')) {
      for (const m of stripComments(text).matchAll(/export\s*\*\s*from\s*['"]([^'"]+)['"]/g)) {
        const target = resolve(dirname(file), m[1]);
        const declared = stripComments(readFileSync(target, 'utf8')).matchAll(
          /(?:^|\n)export\s+(?:async\s+)?(?:function\s*\*?|const|let|var|class)\s*([A-Za-z_$][\w$]*)/g,
        );
        for (const d of declared) if (!map.has(d[1])) map.set(d[1], { file: target, name: d[1] });
      }
    }
  }
  barrels.set(file, map);
  return map;
}

/** The file and name that define `name` as exported by barrel `file` (through nested barrels). */
function definition(file, name) {
  const hit = barrelMap(file)?.get(name);
  if (hit === undefined) return undefined;
  return (/\/index\.[tj]s$/.test(hit.file) ? definition(hit.file, hit.name) : undefined) ?? hit;
}

/*
 * Embedded file descriptors, decoded at build time. Generated code (protoc-gen-es v2, ours in
 * packages/proto/src/gen and the well-known types in @bufbuild/protobuf) makes each .proto file's
 * descriptor at import with `fileDesc("<base64 FileDescriptorProto>", [deps])`: that decodes the
 * bytes with the reflective binary reader, and needs descriptor.proto's own descriptor, which
 * @bufbuild/protobuf builds (`boot()`) from a 30 KB object literal on first use. Every command
 * paid both before doing anything (~20-35 ms of a ~100 ms budget on this machine). The plugin
 * replaces each call with the FileDescriptorProto already decoded, as an object literal with its
 * JSON names filled in (what fileDesc computes at run time), given to the same registry code
 * fileDesc ends in (`createEmbeddedFileRegistry`); descriptor.proto is then built only by code
 * that really uses descriptors as messages. test/integration/cli-embedded-descriptors.test.ts
 * checks that every descriptor equals the one fileDesc makes.
 */
const FILE_DESC_CALL = /fileDesc\("([A-Za-z0-9+/=]+)"(\s*,\s*\[[^\]]*\])?\)/g;
const protobufEsm = join(root, 'node_modules', '@bufbuild', 'protobuf', 'dist', 'esm');
const EMBEDDED_FILE_DESC = 'ztwim:embedded-file-desc';
let protobufTools;

/** @bufbuild/protobuf's decoder and its JSON-name step, from the files fileDesc itself uses. */
async function loadProtobufTools() {
  protobufTools ??= Promise.all([
    import(join(protobufEsm, 'from-binary.js')),
    import(join(protobufEsm, 'wire', 'base64-encoding.js')),
    import(join(protobufEsm, 'wkt', 'google', 'protobuf', 'descriptor_pb.js')),
    import(join(protobufEsm, 'codegenv2', 'restore-json-names.js')),
  ]).then(([{ fromBinary }, { base64Decode }, { FileDescriptorProtoSchema, MethodOptions_IdempotencyLevel }, { restoreJsonNames }]) => ({
    fromBinary,
    base64Decode,
    FileDescriptorProtoSchema,
    restoreJsonNames,
    MethodOptions_IdempotencyLevel,
  }));
  return await protobufTools;
}

/**
 * JavaScript source that rebuilds `value` (a decoded descriptor message graph): each message as
 * `__m(prototype, own fields)` where the prototype (the defaults @bufbuild/protobuf keeps on a
 * proto2 message's prototype) is a shared constant, as the decoder's own messages share theirs.
 */
function messageSource(value, protos) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : Number.isFinite(value) ? String(value) : `Number(${JSON.stringify(String(value))})`;
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    default:
      break;
  }
  if (value instanceof Uint8Array) return `new Uint8Array([${value.join(',')}])`;
  if (Array.isArray(value)) return `[${value.map((v) => messageSource(v, protos)).join(',')}]`;
  const own = `{${Object.keys(value)
    .map((k) => `${JSON.stringify(k)}:${messageSource(value[k], protos)}`)
    .join(',')}}`;
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return own;
  let name = protos.get(proto);
  if (name === undefined) {
    if (Object.getPrototypeOf(proto) !== Object.prototype) throw new Error('build-cli: unexpected prototype chain in a decoded descriptor');
    name = `__p${protos.size}`;
    protos.set(proto, name);
  }
  return `__m(${name},${own})`;
}

/** `source` with every `fileDesc("…", deps)` replaced by its decoded descriptor (see above). */
async function embedFileDescriptors(source) {
  if (!source.includes('fileDesc("')) return source;
  const { fromBinary, base64Decode, FileDescriptorProtoSchema, restoreJsonNames } = await loadProtobufTools();
  const protos = new Map();
  let out = source.replace(FILE_DESC_CALL, (_call, b64, deps) => {
    const root = fromBinary(FileDescriptorProtoSchema, base64Decode(b64));
    root.messageType.forEach(restoreJsonNames);
    return `__embeddedFileDesc(${messageSource(root, protos)}${deps ?? ''})`;
  });
  // fileDesc is no longer called: drop it from the imports (verbatimModuleSyntax keeps unused ones,
  // and importing it would build descriptor.proto's descriptor again).
  out = out.replace(/import\s*\{([^}]*)\}\s*from\s*(['"][^'"]*(?:codegenv2|codegenv2\/file\.js)['"])\s*;?/g, (stmt, list, from) => {
    const names = list
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '' && x !== 'fileDesc');
    return names.length === 0 ? '' : `import { ${names.join(', ')} } from ${from};`;
  });
  const consts = [...protos].map(([proto, name]) => `const ${name} = ${messageSource({ ...proto }, new Map())};`);
  // On the first line, so the file's other lines (and its source map) keep their numbers.
  return `import { embeddedFileDesc as __embeddedFileDesc } from ${JSON.stringify(EMBEDDED_FILE_DESC)}; const __m = (p, o) => Object.assign(Object.create(p), o); ${consts.join(' ')} ${out}`;
}

/**
 * connect's Connect-protocol code imports one enum of descriptor.proto, which would build the
 * whole descriptor for every server and client: it gets the enum's object (the same TypeScript
 * enum object descriptor_pb.js exports) in its place.
 */
const IDEMPOTENCY_IMPORT = 'import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";';
async function inlineIdempotencyLevel(source) {
  if (!source.includes(IDEMPOTENCY_IMPORT)) return source;
  const { MethodOptions_IdempotencyLevel } = await loadProtobufTools();
  return source.replace(IDEMPOTENCY_IMPORT, `const MethodOptions_IdempotencyLevel = ${JSON.stringify(MethodOptions_IdempotencyLevel)};`);
}

/** The run-time half: what fileDesc does once it has decoded the bytes (codegenv2/file.js). */
const EMBEDDED_FILE_DESC_SOURCE = `import { createEmbeddedFileRegistry } from ${JSON.stringify(join(protobufEsm, 'registry.js'))};
export function embeddedFileDesc(root, imports) {
  root.dependency = imports?.map((f) => f.proto.name) ?? [];
  return createEmbeddedFileRegistry(root, (name) => imports?.find((f) => f.proto.name === name)).getFile(root.name);
}
`;

export const barrelImports = {
  name: 'barrel-imports',
  setup(build) {
    build.onResolve({ filter: new RegExp(`^${EMBEDDED_FILE_DESC}$`) }, () => ({ path: EMBEDDED_FILE_DESC, namespace: 'ztwim' }));
    build.onLoad({ filter: /.*/, namespace: 'ztwim' }, () => ({ contents: EMBEDDED_FILE_DESC_SOURCE, loader: 'js', resolveDir: protobufEsm }));
    build.onLoad(
      { filter: /\/packages\/[a-z0-9-]+\/src\/.*\.ts$|\/node_modules\/(@connectrpc\/connect(-node)?|@bufbuild\/protobuf)\/dist\/esm\/.*\.js$/ },
      async (args) => {
        const raw = readFileSync(args.path, 'utf8');
        const text = /_pb\.[tj]s$/.test(args.path)
          ? await embedFileDescriptors(raw)
          : args.path.includes('/@connectrpc/')
            ? await inlineIdempotencyLevel(raw)
            : raw;
        const contents = text.replace(NAMED_IMPORT, (stmt, list, from) => {
          if (EXTERNAL_PACKAGES.includes(from)) return stmt;
          const barrel = from.startsWith('.') ? resolve(dirname(args.path), from) : packageEntry(from);
          if (barrel === undefined || barrelMap(barrel) === undefined) return stmt;
          const byFile = new Map();
          const kept = [];
          for (const s of specifiers(list)) {
            if (s.typeOnly) continue;
            const def = definition(barrel, s.name);
            if (def === undefined) {
              kept.push(`${s.name} as ${s.alias}`);
              continue;
            }
            byFile.set(def.file, [...(byFile.get(def.file) ?? []), `${def.name} as ${s.alias}`]);
          }
          const out = [...byFile].map(([f, names]) => `import { ${names.join(', ')} } from ${JSON.stringify(f)};`);
          if (kept.length > 0) out.push(`import { ${kept.join(', ')} } from ${JSON.stringify(from)};`);
          // Same line count, so esbuild's positions (and source maps) stay right.
          return out.join(' ') + '\n'.repeat(stmt.split('\n').length - 1);
        });
        return { contents, loader: args.path.endsWith('.js') ? 'js' : 'ts', resolveDir: dirname(args.path) };
      },
    );
  },
};

/**
 * The bundle imports the external packages itself, so an installed @ztwim/cli (npm install -g of
 * the packed tarballs) must depend on each: refuse to build a bundle that would not load there.
 */
function checkExternalsAreDependencies() {
  const deps = JSON.parse(readFileSync(join(packagesDir, 'cli', 'package.json'), 'utf8')).dependencies ?? {};
  const missing = EXTERNAL_PACKAGES.filter((p) => !(p in deps));
  if (missing.length > 0)
    throw new Error(`build-cli: packages/cli/package.json must list the bundle's external packages as dependencies: ${missing.join(', ')}`);
}

/**
 * Writes the bundle to `outdir` (default packages/cli/dist/bundle, which bin/ztwim.js runs;
 * scripts/k8s/image-contents.mjs bundles into its own staging dir so an image build never
 * rewrites the tree's bundle under a running test).
 */
export async function buildCli({ outdir = defaultOutdir } = {}) {
  checkExternalsAreDependencies();
  rmSync(outdir, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { main: join(packagesDir, 'cli', 'src', 'main.ts') },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    conditions: ['ztwim-source'],
    external: EXTERNAL_PACKAGES,
    // Bundled CommonJS code (yaml's, for one) calls require() for Node built-ins.
    banner: { js: "import { createRequire as __ztwimRequire } from 'node:module'; const require = __ztwimRequire(import.meta.url);" },
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [barrelImports],
  });
  await buildDaemonScript(outdir, 'server-run');
  await buildDaemonScript(outdir, 'agent-run');
  // The console's web app (scripts/build-console.mjs), where @ztwim/console looks for it beside the bundle.
  const consoleWeb = join(packagesDir, 'console', 'dist', 'web');
  if (!existsSync(join(consoleWeb, 'index.html'))) throw new Error('build-cli: the console web app is not built: run scripts/build-console.mjs first');
  cpSync(consoleWeb, join(outdir, 'console-web'), { recursive: true });
  return result;
}

/**
 * `ztwim server run` as one CommonJS file, `server-run.cjs` beside the ESM chunks, which
 * bin/ztwim.js compiles with a V8 code cache (see there why). Node 20 caches no compiled code for
 * ES modules, and a start spent about half its CPU time resolving and compiling the ~30 chunks
 * the server needs (bench/results/server-start.md). The same sources and plugins as the ESM
 * bundle, without code splitting (CommonJS has none; the modules the server imports only for some
 * configs stay lazy, esbuild runs each when its import() would have). `server-run.json` names the
 * file with the SHA-256 of its text: V8 checks a cache against the source's length only, so
 * bin/ztwim.js keys its cache files by that hash. `ztwim agent run` gets the same (agent-run.cjs from
 * agent-run-main.ts, agent-run.json).
 */
async function buildDaemonScript(outdir, name) {
  const file = `${name}.cjs`;
  await esbuild.build({
    entryPoints: { [name]: join(packagesDir, 'cli', 'src', `${name}-main.ts`) },
    outdir,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    conditions: ['ztwim-source'],
    external: DAEMON_EXTERNAL_PACKAGES,
    // import.meta.url of the sources (the console's web app dir, createRequire) is this file's URL.
    define: { 'import.meta.url': '__ztwimImportMetaUrl' },
    banner: {
      js: [
        "const __ztwimImportMetaUrl = require('node:url').pathToFileURL(__filename).href;",
        // Node 20 drops a vm.Script's importModuleDynamically when the script is compiled from a
        // code cache written by another process ("A dynamic import callback was not specified"),
        // so import() inside this file goes through the ES-module launcher's own import().
        'const __ztwimImport = globalThis.__ztwimDynamicImport ?? ((specifier) => import(specifier));',
      ].join('\n'),
    },
    sourcemap: 'linked',
    logLevel: 'warning',
    plugins: [barrelImports],
  });
  const out = join(outdir, file);
  const text = readFileSync(out, 'utf8');
  const rewritten = text.replace(/\bimport\((?=["'])/g, '__ztwimImport(');
  writeFileSync(out, rewritten);
  const sha256 = createHash('sha256').update(rewritten).digest('hex');
  writeFileSync(join(outdir, `${name}.json`), `${JSON.stringify({ file, sha256 }, null, 2)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await buildCli();
}
