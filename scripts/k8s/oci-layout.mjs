#!/usr/bin/env node
// Turns a rootfs directory into an OCI image-layout tarball that `ctr image import` loads, so the
// test node gets images without a registry or a container engine.
//
//   node scripts/k8s/oci-layout.mjs --rootfs DIR --name docker.io/library/NAME:TAG --out FILE.tar
//     [--entrypoint '["/bin/x","a"]'] [--cmd '[...]'] [--user 65532:65532] [--workdir /]
//     [--env K=V]... [--arch amd64]
//
// One gzip layer; config and manifest blobs named by sha256; index.json annotated with
// io.containerd.image.name (the full name ctr imports it as) and org.opencontainers.image.ref.name
// (the tag). Deterministic: every entry gets mtime SOURCE_DATE_EPOCH (default 0) and owner 0:0,
// names are sorted, the gzip header carries no time, so the same rootfs gives the same digest.
// Prints the manifest digest on stdout.
//
// The tar streams come from the system GNU tar (--sort/--mtime/--owner): it already handles
// every file kind a rootfs holds (symlinks, hard links, long names, special modes) and does it
// reproducibly; a hand-written tar writer would repeat that for no gain, and Node has none built in.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

const usage = `usage: oci-layout.mjs --rootfs DIR --name REF:TAG --out FILE.tar [--entrypoint JSON] [--cmd JSON] [--user U] [--workdir DIR] [--env K=V]... [--arch ARCH]`;

function fail(msg) {
  console.error(`oci-layout: ${msg}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { env: [] };
  const known = new Set(['rootfs', 'name', 'out', 'entrypoint', 'cmd', 'user', 'workdir', 'env', 'arch']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      console.log(usage);
      process.exit(0);
    }
    const m = /^--([a-z]+)(?:=(.*))?$/s.exec(a);
    if (!m || !known.has(m[1])) fail(`unknown argument ${JSON.stringify(a)}\n${usage}`);
    const v = m[2] ?? argv[++i];
    if (v === undefined) fail(`--${m[1]} needs a value`);
    if (m[1] === 'env') o.env.push(v);
    else o[m[1]] = v;
  }
  for (const k of ['rootfs', 'name', 'out']) if (!o[k]) fail(`--${k} is required\n${usage}`);
  return o;
}

function jsonArray(flag, text) {
  if (text === undefined) return undefined;
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail(`--${flag} is not JSON: ${e.message}`);
  }
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) fail(`--${flag} must be a JSON array of strings`);
  return v;
}

const opts = parseArgs(process.argv.slice(2));
const rootfs = resolve(opts.rootfs);
try {
  if (!statSync(rootfs).isDirectory()) fail(`${rootfs} is not a directory`);
} catch {
  fail(`rootfs ${rootfs} does not exist`);
}
// NAME[:TAG] where the tag follows the last '/' (a registry host may carry a port).
const nameMatch = /^([a-z0-9][a-z0-9._\-/:]*?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$/.exec(opts.name);
if (!nameMatch || nameMatch[1].endsWith('/')) fail(`--name ${JSON.stringify(opts.name)} is not an image reference like docker.io/library/NAME:TAG`);
const tag = nameMatch[2] ?? 'latest';
const fullName = nameMatch[2] ? opts.name : `${opts.name}:latest`;
for (const e of opts.env) if (!/^[^=]+=/.test(e)) fail(`--env ${JSON.stringify(e)} is not K=V`);
const entrypoint = jsonArray('entrypoint', opts.entrypoint);
const cmd = jsonArray('cmd', opts.cmd);
const arch = opts.arch ?? { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }[process.arch] ?? process.arch;
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
if (!Number.isInteger(epoch) || epoch < 0) fail('SOURCE_DATE_EPOCH must be a non-negative integer');
const created = new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');

if (spawnSync('tar', ['--version'], { encoding: 'utf8' }).stdout?.includes('GNU tar') !== true) {
  fail('needs GNU tar on PATH (Debian: apt-get install tar)');
}
const tarFlags = ['--sort=name', `--mtime=@${epoch}`, '--owner=0', '--group=0', '--numeric-owner', '--format=gnu', '--no-acls', '--no-xattrs', '--no-selinux'];

/** Counts bytes and hashes them as they pass. */
function digester() {
  const hash = createHash('sha256');
  let size = 0;
  const t = new Transform({
    transform(chunk, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  return { t, result: () => ({ digest: `sha256:${hash.digest('hex')}`, size }) };
}

function runTar(args, cwd) {
  const p = spawn('tar', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => {
    err += d;
  });
  const done = new Promise((res, rej) => {
    p.on('error', rej);
    p.on('close', (code) => (code === 0 ? res() : rej(new Error(`tar ${args.join(' ')} failed (${code}): ${err.trim()}`))));
  });
  return { stdout: p.stdout, done };
}

const work = mkdtempSync(join(tmpdir(), 'oci-layout-'));
try {
  const layout = join(work, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });

  // Layer: tar of the rootfs -> (hash = diff_id) -> gzip -> (hash = layer digest) -> blob file.
  const layerTmp = join(work, 'layer.tar.gz');
  const raw = digester();
  const gz = digester();
  const tarLayer = runTar(['--create', '--file=-', ...tarFlags, '.'], rootfs);
  await Promise.all([pipeline(tarLayer.stdout, raw.t, createGzip({ level: 6 }), gz.t, createWriteStream(layerTmp)), tarLayer.done]);
  const diff = raw.result();
  const layer = gz.result();
  renameSync(layerTmp, join(blobs, layer.digest.slice(7)));

  const writeBlob = (obj) => {
    const bytes = Buffer.from(JSON.stringify(obj));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    writeFileSync(join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };

  const runConfig = {};
  if (opts.user !== undefined) runConfig.User = opts.user;
  if (opts.env.length > 0) runConfig.Env = opts.env;
  if (entrypoint !== undefined) runConfig.Entrypoint = entrypoint;
  if (cmd !== undefined) runConfig.Cmd = cmd;
  if (opts.workdir !== undefined) runConfig.WorkingDir = opts.workdir;
  const config = writeBlob({
    created,
    architecture: arch,
    os: 'linux',
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: [diff.digest] },
    history: [{ created, created_by: 'scripts/k8s/oci-layout.mjs' }],
  });
  const manifest = writeBlob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: arch, os: 'linux' },
          annotations: { 'io.containerd.image.name': fullName, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );

  const out = resolve(opts.out);
  mkdirSync(dirname(out), { recursive: true });
  const outTmp = `${out}.tmp-${process.pid}`;
  const tarOut = runTar(['--create', '--file=-', ...tarFlags, 'oci-layout', 'index.json', 'blobs'], layout);
  await Promise.all([pipeline(tarOut.stdout, createWriteStream(outTmp)), tarOut.done]);
  renameSync(outTmp, out);
  console.log(manifest.digest);
} catch (e) {
  console.error(`oci-layout: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
