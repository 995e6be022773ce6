#!/usr/bin/env node
// What goes in the ztwim container image: the one list both ways of building it follow.
//
//   scripts/k8s/image.sh (no registry, no container engine) runs `build` below: a rootfs with the
//   installed node, the libraries ldd lists, passwd/group with the non-root user, CA certificates
//   and the app, made into an OCI image-layout tarball by scripts/k8s/oci-layout.mjs and cached
//   under ${ZTWIM_CACHE:-~/.cache/ztwim}/images/ by a hash of every input.
//   Dockerfile (for users with an engine) runs `stage-app` in its build stage and copies that tree
//   and node onto a distroless base that provides IMAGE.fromBase and IMAGE.baseLibraries.
//   test/integration/k8s-image.test.ts holds the two in step.
//
//   node scripts/k8s/image-contents.mjs build [--spire] [--cache DIR]   prints the tarball path, its
//        image name and whether it came from the cache (JSON on stdout)
//   node scripts/k8s/image-contents.mjs rootfs DIR [--spire]            the rootfs alone, into DIR
//   node scripts/k8s/image-contents.mjs stage-app DIR                   IMAGE.added (but node) under DIR,
//                                                                       with the tools' libraries the base lacks
//   node scripts/k8s/image-contents.mjs spec                            IMAGE as JSON (for tests)
//
// The app is the CLI bundle of scripts/build-cli.mjs (bundled afresh into a staging dir) plus the
// packages it keeps external and their production dependencies, copied from this tree's
// node_modules at the same relative places (so nested versions resolve as they do here), without
// build intermediates, sources, tests and type declarations. Against `npm pack` + `npm install`
// of the workspaces' tarballs (the same closure, but every workspace's compiled modules and every
// package's sources, and the native addons compiled again) the bundle is the smaller and quicker:
// 14 MB in ~1,080 files against 147 MB in 12,376 files and 15 minutes here (docs/kubernetes.md).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
// ZTWIM_IMAGE_TAG: tag a build from a branch that differs from main (the node's image store is shared).
const VERSION = process.env.ZTWIM_IMAGE_TAG || JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const CACHE = process.env.ZTWIM_CACHE ?? join(homedir(), '.cache', 'ztwim');

/** Where things live in the image. */
export const APP_DIR = '/usr/local/lib/ztwim';
export const NODE_PATH = '/usr/local/bin/node';
export const ENTRY_PATH = '/usr/local/bin/ztwim';
export const SPIRE_BINARIES = ['spire-agent', 'spire-server'];
/**
 * util-linux's mount and umount: `ztwim csi` runs them to bind-mount the agent's socket dir into
 * pods (deploy/k8s/csi-driver.yaml). Copied with the libraries ldd lists that the base lacks.
 */
export const MOUNT_TOOLS = ['/usr/bin/mount', '/usr/bin/umount'];

export const IMAGE = {
  name: `ztwim:${VERSION}`,
  /** The test-only image: the same plus SPIRE v1.13.0's spire-agent and spire-server. */
  spireName: `ztwim-spire-test:${VERSION}`,
  uid: 65532,
  gid: 65532,
  user: '65532:65532',
  entrypoint: [ENTRY_PATH],
  workdir: '/',
  env: ['PATH=/usr/local/bin:/usr/bin:/bin'],
  /**
   * What ztwim adds to a base. `stage-app` writes all but node (and the mount tools' libraries the
   * base lacks, at their ldd paths); the Dockerfile's final stage copies node and that tree.
   */
  added: [NODE_PATH, APP_DIR, ENTRY_PATH, ...MOUNT_TOOLS],
  /**
   * What a distroless cc base (gcr.io/distroless/cc-debian12:nonroot) already holds and image.sh
   * makes itself: the user, CA certificates, a world-writable /tmp, NSS config; plus glibc and
   * libstdc++ (image.sh: what `ldd` lists for node, the addons and the tools).
   */
  fromBase: ['/etc/passwd', '/etc/group', '/etc/nsswitch.conf', '/etc/ssl/certs/ca-certificates.crt', '/tmp'],
  /** The shared libraries such a base has (file names); stage-app leaves these out. */
  baseLibraries: [
    'ld-linux-x86-64.so.2',
    'ld-linux-aarch64.so.1',
    'libc.so.6',
    'libm.so.6',
    'libdl.so.2',
    'libpthread.so.0',
    'librt.so.1',
    'libstdc++.so.6',
    'libgcc_s.so.1',
  ],
  dockerBase: 'gcr.io/distroless/cc-debian12:nonroot',
};

/** Packages the bundle leaves to Node's resolution (scripts/build-cli.mjs EXTERNAL_PACKAGES). */
async function externalPackages() {
  return (await import('../build-cli.mjs')).EXTERNAL_PACKAGES;
}

/** Dependencies a package lists that only its install script uses (never loaded at run time). */
const INSTALL_TIME_ONLY = new Set(['prebuild-install']);

/** Node's package lookup: `<dir>/node_modules/<name>`, walking up from `from` to ROOT. */
function findPackage(name, from) {
  for (let d = from; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (d === ROOT || d === dirname(d)) return undefined;
  }
}

/**
 * Every package the externals need at run time, as [path where Node finds it (relative to ROOT),
 * real directory]. Optional dependencies that are not installed are left out, as npm does.
 */
export async function externalClosure() {
  const found = new Map();
  const visit = (name, from, optional) => {
    const at = findPackage(name, from);
    if (at === undefined) {
      if (optional) return;
      throw new Error(`image-contents: ${name} (needed from ${relative(ROOT, from) || '.'}) is not installed: run npm ci`);
    }
    const rel = relative(ROOT, at);
    if (found.has(rel)) return;
    const real = realpathSync(at);
    found.set(rel, real);
    const pkg = JSON.parse(readFileSync(join(at, 'package.json'), 'utf8'));
    for (const d of Object.keys(pkg.dependencies ?? {})) if (!INSTALL_TIME_ONLY.has(d)) visit(d, at, false);
    for (const d of Object.keys(pkg.optionalDependencies ?? {})) visit(d, at, true);
  };
  for (const name of await externalPackages()) visit(name, join(ROOT, 'packages', 'cli'), false);
  return [...found].sort(([a], [b]) => a.localeCompare(b));
}

const SKIP_DIRS = new Set(['node_modules', '.github', 'test', 'tests', 'docs', 'example', 'examples', 'benchmark']);
const SKIP_FILE = /(\.map|\.d\.[cm]?ts|\.ts|\.md|\.test\.[cm]?js)$/;

/** Files of one package that run: for a native addon only the built `.node` files of its build. */
function packageFiles(real) {
  const native = existsSync(join(real, 'binding.gyp'));
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      const rel = relative(real, p);
      if (e.isDirectory()) {
        if (SKIP_DIRS.has(e.name) || e.name.startsWith('.')) continue;
        if (native && dir === real && ['build', 'deps', 'src', 'native', 'scripts'].includes(e.name)) continue;
        walk(p);
      } else if (e.isFile() && !SKIP_FILE.test(e.name) && !(native && e.name === 'binding.gyp')) {
        out.push(rel);
      }
    }
  };
  walk(real);
  if (native) {
    const release = join(real, 'build', 'Release');
    for (const f of readdirSync(release).sort()) if (f.endsWith('.node') && f !== 'test_extension.node') out.push(join('build', 'Release', f));
  }
  return out;
}

/**
 * The entry on PATH: the flags of bin/ztwim.js's `#!/usr/bin/env node` / `#!/usr/bin/env -S node
 * <flags>` line, with node's own path, because the image has no /usr/bin/env. (The DaemonSets add
 * the daemons' V8 flag through NODE_OPTIONS.)
 */
function entryScript() {
  const first = readFileSync(join(ROOT, 'packages', 'cli', 'bin', 'ztwim.js'), 'utf8').split('\n')[0] ?? '';
  const m = /^#!\/usr\/bin\/env(?: -S)? node(?: (.*))?$/.exec(first);
  if (m === null)
    throw new Error(
      `image-contents: packages/cli/bin/ztwim.js starts with ${JSON.stringify(first)}, not "#!/usr/bin/env node" or "#!/usr/bin/env -S node ..."`,
    );
  return (
    `#!${NODE_PATH}${m[1] ? ` ${m[1]}` : ''}\n` +
    '// ztwim in the container image (scripts/k8s/image-contents.mjs): bin/ztwim.js with the node flags of its first line.\n' +
    `import(${JSON.stringify(`${APP_DIR}/packages/cli/bin/ztwim.js`)});\n`
  );
}

/**
 * A plan entry: `dest` (absolute in the image) and one of `src` (file to copy), `text`, `dir`.
 * `mode` for files and dirs.
 */
async function appPlan(bundleDir) {
  const plan = [];
  const cli = join(ROOT, 'packages', 'cli');
  plan.push({ dest: `${APP_DIR}/packages/cli/package.json`, src: join(cli, 'package.json'), mode: 0o644 });
  plan.push({ dest: `${APP_DIR}/packages/cli/bin/ztwim.js`, src: join(cli, 'bin', 'ztwim.js'), mode: 0o755 });
  for (const f of readdirSync(bundleDir).sort()) {
    if (f.endsWith('.js')) plan.push({ dest: `${APP_DIR}/packages/cli/dist/bundle/${f}`, src: join(bundleDir, f), mode: 0o644 });
  }
  // The web console's app (index.html, app.js, app.css), which build-cli copies beside the bundle.
  const web = join(bundleDir, 'console-web');
  for (const f of readdirSync(web).sort()) {
    plan.push({ dest: `${APP_DIR}/packages/cli/dist/bundle/console-web/${f}`, src: join(web, f), mode: 0o644 });
  }
  for (const [rel, real] of await externalClosure()) {
    for (const f of packageFiles(real)) {
      plan.push({
        dest: `${APP_DIR}/${rel.split(sep).join('/')}/${f.split(sep).join('/')}`,
        src: join(real, f),
        mode: statSync(join(real, f)).mode & 0o111 ? 0o755 : 0o644,
      });
    }
  }
  plan.push({ dest: ENTRY_PATH, text: entryScript(), mode: 0o755 });
  for (const tool of MOUNT_TOOLS) {
    const src = [tool, tool.replace(/^\/usr/, '')].find((p) => existsSync(p));
    if (src === undefined) throw new Error(`image-contents: ${tool} is missing (Debian: apt-get install mount)`);
    // not setuid as on the host: the CSI driver runs it as root
    plan.push({ dest: tool, src: realpathSync(src), mode: 0o755 });
    for (const lib of lddLibraries(src)) {
      const name = lib.split('/').pop() ?? '';
      if (!IMAGE.baseLibraries.includes(name) && !plan.some((e) => e.dest === lib)) plan.push({ dest: lib, src: realpathSync(lib), mode: 0o755 });
    }
  }
  return plan;
}

/** Shared libraries `ldd` lists for an ELF file (absolute paths as the loader looks them up). */
export function lddLibraries(file) {
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (/statically linked|not a dynamic executable/.test(text)) return [];
  if (r.status !== 0) throw new Error(`image-contents: ldd ${file} failed: ${text.trim()}`);
  const libs = [];
  for (const line of text.split('\n')) {
    if (/not found/.test(line)) throw new Error(`image-contents: ${file} needs a library that is not installed: ${line.trim()}`);
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1] !== undefined) libs.push(m[1]);
  }
  return libs;
}

const PASSWD = `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${IMAGE.uid}:${IMAGE.gid}:nonroot:/home/nonroot:/sbin/nologin\n`;
const GROUP = `root:x:0:\nnonroot:x:${IMAGE.gid}:\n`;
const NSSWITCH = 'passwd: files\ngroup: files\nhosts: files dns\n';
const CA_CERTS = '/etc/ssl/certs/ca-certificates.crt';

/** The whole rootfs of image.sh: the base parts a distroless image would give, node, the app. */
async function rootfsPlan(bundleDir, { spire }) {
  const node = realpathSync(process.execPath);
  const plan = [
    { dest: '/tmp', dir: true, mode: 0o1777 },
    { dest: '/etc/passwd', text: PASSWD, mode: 0o644 },
    { dest: '/etc/group', text: GROUP, mode: 0o644 },
    { dest: '/etc/nsswitch.conf', text: NSSWITCH, mode: 0o644 },
    { dest: CA_CERTS, src: realpathSync(CA_CERTS), mode: 0o644 },
    { dest: NODE_PATH, src: node, mode: 0o755 },
    ...(await appPlan(bundleDir)),
  ];
  if (spire) {
    const bin = join(CACHE, 'spire-v1.13.0', 'bin');
    for (const b of SPIRE_BINARIES) {
      if (!existsSync(join(bin, b))) throw new Error(`image-contents: ${join(bin, b)} is missing: run scripts/setup-interop.sh`);
      plan.push({ dest: `/usr/local/bin/${b}`, src: join(bin, b), mode: 0o755 });
    }
  }
  const elves = plan.filter((e) => e.src !== undefined && (e.dest === NODE_PATH || e.dest.endsWith('.node') || e.dest.startsWith('/usr/local/bin/spire-')));
  const libs = new Set(elves.flatMap((e) => lddLibraries(e.src)));
  // the tools' libraries beyond glibc are in the app plan already
  for (const lib of [...libs].sort()) {
    if (!plan.some((e) => e.dest === lib)) plan.push({ dest: lib, src: realpathSync(lib), mode: 0o755 });
  }
  return plan;
}

function materialise(plan, dir) {
  for (const e of plan) {
    const to = join(dir, e.dest);
    if (e.dir) {
      mkdirSync(to, { recursive: true });
      chmodSync(to, e.mode);
      continue;
    }
    mkdirSync(dirname(to), { recursive: true });
    if (e.src !== undefined) copyFileSync(e.src, to);
    else writeFileSync(to, e.text);
    chmodSync(to, e.mode);
  }
}

const fileHashes = new Map();
function fileHash(p) {
  let h = fileHashes.get(p);
  if (h === undefined) {
    h = createHash('sha256').update(readFileSync(p)).digest('hex');
    fileHashes.set(p, h);
  }
  return h;
}

/** Hash of everything the image is made of: each entry's place, mode and content, and the tools. */
function planHash(plan, extra) {
  const h = createHash('sha256');
  for (const e of [...plan].sort((a, b) => a.dest.localeCompare(b.dest))) {
    const content = e.dir ? 'dir' : e.src !== undefined ? fileHash(e.src) : createHash('sha256').update(e.text).digest('hex');
    h.update(`${e.dest}\0${e.mode.toString(8)}\0${content}\n`);
  }
  for (const x of extra) h.update(`${x}\n`);
  return h.digest('hex');
}

async function withBundle(fn) {
  const work = mkdtempSync(join(tmpdir(), 'ztwim-image-'));
  try {
    const { buildCli } = await import('../build-cli.mjs');
    const bundle = join(work, 'bundle');
    await buildCli({ outdir: bundle });
    return await fn(bundle, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const OCI_LAYOUT = join(ROOT, 'scripts', 'k8s', 'oci-layout.mjs');

/**
 * Removes tarballs of the same image built from other inputs more than a day ago. Not sooner:
 * several checkouts share the cache, and another one may be importing its own build right now.
 */
function pruneOld(cacheDir, name, keep) {
  const prefix = `${name.replace(':', '-')}-`;
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const f of readdirSync(cacheDir)) {
    const p = join(cacheDir, f);
    if (p === keep || !f.startsWith(prefix) || !/^[0-9a-f]{16}\.tar$/.test(f.slice(prefix.length))) continue;
    try {
      if (statSync(p).mtimeMs < dayAgo) rmSync(p, { force: true });
    } catch {
      // removed meanwhile by another build
    }
  }
}

/** Builds (or finds in the cache) the OCI tarball; returns { tarball, name, cached, hash, files, rootfsBytes }. */
export async function buildImage({ spire = false, cacheDir = join(CACHE, 'images') } = {}) {
  return await withBundle(async (bundle, work) => {
    const plan = await rootfsPlan(bundle, { spire });
    // ZTWIM_IMAGE_TAG names a branch's image (`ztwim:<branch>`) so it does not replace main's on the shared node.
    const tag = process.env.ZTWIM_IMAGE_TAG;
    const base = spire ? IMAGE.spireName : IMAGE.name;
    const name = tag === undefined || tag === '' ? base : `${base.slice(0, base.indexOf(':'))}:${tag}`;
    const config = JSON.stringify({ name, user: IMAGE.user, entrypoint: IMAGE.entrypoint, workdir: IMAGE.workdir, env: IMAGE.env });
    const hash = planHash(plan, [config, fileHash(OCI_LAYOUT), fileHash(new URL(import.meta.url).pathname)]);
    const tarball = join(cacheDir, `${name.replace(':', '-')}-${hash.slice(0, 16)}.tar`);
    const rootfsBytes = plan.reduce((n, e) => n + (e.src !== undefined ? statSync(e.src).size : e.text !== undefined ? Buffer.byteLength(e.text) : 0), 0);
    const result = { tarball, name: `docker.io/library/${name}`, hash, files: plan.length, rootfsBytes };
    if (existsSync(tarball)) return { ...result, cached: true };
    const rootfs = join(work, 'rootfs');
    materialise(plan, rootfs);
    mkdirSync(cacheDir, { recursive: true });
    const tmpOut = `${tarball}.tmp-${process.pid}`;
    const r = spawnSync(
      process.execPath,
      [
        OCI_LAYOUT,
        '--rootfs',
        rootfs,
        '--name',
        result.name,
        '--out',
        tmpOut,
        '--entrypoint',
        JSON.stringify(IMAGE.entrypoint),
        '--user',
        IMAGE.user,
        '--workdir',
        IMAGE.workdir,
        ...IMAGE.env.flatMap((e) => ['--env', e]),
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) {
      rmSync(tmpOut, { force: true });
      throw new Error(`image-contents: oci-layout.mjs failed: ${r.stderr.trim()}`);
    }
    renameSync(tmpOut, tarball);
    pruneOld(cacheDir, name, tarball);
    return { ...result, cached: false, digest: r.stdout.trim() };
  });
}

/** The rootfs alone (tests run it with chroot). */
export async function buildRootfs(dir, { spire = false } = {}) {
  await withBundle(async (bundle) => materialise(await rootfsPlan(bundle, { spire }), dir));
}

/** The app and its entry under DIR (the Dockerfile's build stage; node comes from that stage). */
export async function stageApp(dir) {
  await withBundle(async (bundle) => materialise(await appPlan(bundle), dir));
}

async function main(argv) {
  const [cmd, ...rest] = argv;
  const spire = rest.includes('--spire');
  const args = rest.filter((a) => a !== '--spire');
  const usage = 'usage: image-contents.mjs build [--spire] [--cache DIR] | rootfs DIR [--spire] | stage-app DIR | spec';
  if (cmd === 'spec' && args.length === 0) {
    console.log(JSON.stringify(IMAGE));
  } else if (cmd === 'build') {
    const i = args.indexOf('--cache');
    const cacheDir = i >= 0 ? args[i + 1] : undefined;
    if (i >= 0 && cacheDir === undefined) throw new Error('--cache needs a directory');
    console.log(JSON.stringify(await buildImage({ spire, ...(cacheDir !== undefined ? { cacheDir: resolve(cacheDir) } : {}) })));
  } else if ((cmd === 'rootfs' || cmd === 'stage-app') && args.length === 1 && args[0] !== undefined) {
    const dir = resolve(args[0]);
    if (cmd === 'rootfs') await buildRootfs(dir, { spire });
    else await stageApp(dir);
  } else {
    console.error(usage);
    process.exit(2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await main(process.argv.slice(2));
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  }
}
