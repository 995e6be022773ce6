// The ztwim container image (scripts/k8s/image.sh, scripts/k8s/image-contents.mjs, Dockerfile):
// - the Dockerfile's final stage copies exactly what image-contents.mjs lists as added to a base,
//   with the same user, entrypoint and environment, and stages the app with the same script;
// - the rootfs image.sh makes holds that list and the base parts, and works on its own: `ztwim up`
//   and `ztwim api fetch x509` run chrooted into it as user 65532 (no container engine here; /proc
//   is bound in a private mount namespace as a runtime would mount it);
// - image.sh caches the OCI tarball by a hash of its inputs, named for `ctr image import`.
// Needs root (chroot, unshare) like the rest of the node tests. Slow-ish: a bundle and a rootfs copy.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../interop/lib/net.ts';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { until } from '../interop/lib/wait.ts';
import { runCommand } from '../interop/lib/ztwim-cli.ts';

interface ImageSpec {
  name: string;
  uid: number;
  gid: number;
  user: string;
  entrypoint: string[];
  workdir: string;
  env: string[];
  added: string[];
  fromBase: string[];
  baseLibraries: string[];
  dockerBase: string;
}

const CONTENTS = join(REPO_ROOT, 'scripts', 'k8s', 'image-contents.mjs');
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

async function imageSpec(): Promise<ImageSpec> {
  const r = await runCommand(process.execPath, [CONTENTS, 'spec'], REPO_ROOT);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ImageSpec;
}

interface Stage {
  from: string;
  as?: string;
  instructions: { op: string; args: string }[];
}

/** The Dockerfile's stages: FROM lines and the instructions under each (comments and `\` joined). */
function dockerfileStages(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (m === null) throw new Error(`Dockerfile: cannot read ${JSON.stringify(line)}`);
    const op = (m[1] ?? '').toUpperCase();
    const args = m[2] ?? '';
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (f === null) throw new Error(`Dockerfile: cannot read FROM ${args}`);
      stages.push({ from: f[1] ?? '', ...(f[2] !== undefined ? { as: f[2] } : {}), instructions: [] });
    } else {
      const cur = stages.at(-1);
      if (cur === undefined) throw new Error(`Dockerfile: ${op} before FROM`);
      cur.instructions.push({ op, args });
    }
  }
  return stages;
}

describe('Dockerfile and image-contents.mjs put the same things in the image', () => {
  it('the final stage copies exactly IMAGE.added onto the distroless base, as 65532, with the entrypoint and env', async () => {
    const spec = await imageSpec();
    const stages = dockerfileStages(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
    assert.ok(stages.length >= 2, 'multi-stage');
    const final = stages.at(-1);
    assert.ok(final !== undefined);
    assert.equal(final.from, spec.dockerBase);
    const build = stages.find((s) => s.as === 'build');
    assert.ok(build !== undefined, 'a stage named build');
    const stageRun = build.instructions
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join(' && ');
    const staged = /node scripts\/k8s\/image-contents\.mjs stage-app (\S+)/.exec(stageRun);
    assert.ok(staged?.[1] !== undefined, `the build stage stages the app with image-contents.mjs: ${stageRun}`);
    const stageDir = staged[1];

    const copies = final.instructions
      .filter((i) => i.op === 'COPY' || i.op === 'ADD')
      .map((i) => {
        assert.equal(i.op, 'COPY', 'no ADD');
        const m = /^--from=build\s+(\S+)\s+(\S+)$/.exec(i.args);
        assert.ok(m !== null, `COPY --from=build SRC DEST: ${i.args}`);
        return { src: m[1] ?? '', dest: m[2] ?? '' };
      });
    // node is the build stage's own; everything else is the tree stage-app wrote
    assert.deepEqual(copies, [
      { src: '/usr/local/bin/node', dest: '/usr/local/bin/node' },
      { src: `${stageDir.replace(/\/$/, '')}/`, dest: '/' },
    ]);
    assert.ok(spec.added.includes('/usr/local/bin/node'));

    // and that tree holds IMAGE.added but node, plus libraries a distroless cc base lacks: nothing else
    const tmp = makeTmpDir('ztwim-stage-');
    try {
      const r = await runCommand(process.execPath, [CONTENTS, 'stage-app', tmp.path], REPO_ROOT, { timeoutMs: 300_000 });
      assert.equal(r.status, 0, r.stderr);
      const files = (await runCommand('find', ['.', '-type', 'f'], tmp.path)).stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.slice(1));
      const added = spec.added.filter((p) => p !== '/usr/local/bin/node');
      for (const p of added)
        assert.ok(
          files.some((f) => f === p || f.startsWith(`${p}/`)),
          `${p} staged`,
        );
      const others = files.filter((f) => !added.some((p) => f === p || f.startsWith(`${p}/`)));
      for (const f of others) {
        assert.match(f, /^\/(usr\/)?lib(64)?\/[^/]+(\/[^/]+)?$/, `only libraries besides IMAGE.added: ${f}`);
        assert.ok(!spec.baseLibraries.includes(f.split('/').pop() ?? ''), `the base has ${f}`);
      }
      assert.ok(
        others.some((f) => f.endsWith('/libmount.so.1')),
        `mount's libmount: ${others.join(' ')}`,
      );
    } finally {
      tmp.cleanup();
    }
    const one = (op: string): string => {
      const found = final.instructions.filter((i) => i.op === op);
      assert.equal(found.length, 1, `one ${op} in the final stage`);
      return found[0]?.args ?? '';
    };
    assert.equal(one('USER'), spec.user);
    assert.notEqual(spec.uid, 0);
    assert.deepEqual(JSON.parse(one('ENTRYPOINT')), spec.entrypoint);
    assert.equal(one('WORKDIR'), spec.workdir);
    assert.deepEqual(
      final.instructions.filter((i) => i.op === 'ENV').map((i) => i.args),
      spec.env,
    );
    assert.deepEqual(
      final.instructions.filter((i) => i.op === 'RUN'),
      [],
      'nothing runs in the distroless stage',
    );
  });

  it('dockerfileStages reads FROM ... AS, continuation lines and comments', () => {
    const stages = dockerfileStages('# c\nFROM a:1 AS build\nRUN x \\\n  && y\nFROM b\nCOPY --from=build /p /q\n');
    assert.deepEqual(stages, [
      { from: 'a:1', as: 'build', instructions: [{ op: 'RUN', args: 'x    && y' }] },
      { from: 'b', instructions: [{ op: 'COPY', args: '--from=build /p /q' }] },
    ]);
  });
});

describe('the rootfs of image.sh', () => {
  const tmp = makeTmpDir('ztwim-image-');
  const rootfs = join(tmp.path, 'rootfs');
  const children: ChildProcess[] = [];
  let spec: ImageSpec;
  before(async () => {
    spec = await imageSpec();
    const r = await runCommand(process.execPath, [CONTENTS, 'rootfs', rootfs], REPO_ROOT, { timeoutMs: 300_000 });
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    tmp.cleanup();
  });

  it('holds what a distroless base gives and what ztwim adds, the user 65532 and an entry on PATH', () => {
    for (const p of [...spec.fromBase, ...spec.added]) assert.ok(existsSync(join(rootfs, p)), `${p} is in the rootfs`);
    assert.match(readFileSync(join(rootfs, 'etc/passwd'), 'utf8'), new RegExp(`^nonroot:x:${spec.uid}:${spec.gid}:`, 'm'));
    assert.match(readFileSync(join(rootfs, 'etc/group'), 'utf8'), new RegExp(`^nonroot:x:${spec.gid}:`, 'm'));
    assert.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
    const entry = readFileSync(join(rootfs, spec.entrypoint[0] ?? ''), 'utf8');
    const binFlags = /^#!\/usr\/bin\/env(?: -S)? node(?: (.*))?$/m.exec(
      readFileSync(join(REPO_ROOT, 'packages', 'cli', 'bin', 'ztwim.js'), 'utf8').split('\n')[0] ?? '',
    )?.[1];
    assert.equal(entry.split('\n')[0], `#!/usr/local/bin/node${binFlags === undefined ? '' : ` ${binFlags}`}`, 'the flags of bin/ztwim.js, no /usr/bin/env');
    assert.ok(statSync(join(rootfs, spec.entrypoint[0] ?? '')).mode & 0o111, 'executable');
    assert.ok(existsSync(join(rootfs, 'lib64/ld-linux-x86-64.so.2')), 'the dynamic loader ldd names');
    // build intermediates and sources stay out
    assert.ok(!existsSync(join(rootfs, 'usr/local/lib/ztwim/node_modules/better-sqlite3/deps')));
    assert.ok(!existsSync(join(rootfs, 'usr/local/lib/ztwim/node_modules/better-sqlite3/build/Release/obj.target')));
    assert.ok(existsSync(join(rootfs, 'usr/local/lib/ztwim/node_modules/better-sqlite3/build/Release/better_sqlite3.node')));
    assert.ok(existsSync(join(rootfs, 'usr/local/lib/ztwim/node_modules/@ztwim/peercred/build/Release/peercred.node')));
    assert.ok(!existsSync(join(rootfs, 'usr/local/lib/ztwim/node_modules/prebuild-install')), 'install-time only');
  });

  it('has mount and umount working for ztwim csi: a bind mount and its removal, as root in a private mount namespace', async () => {
    for (const d of ['src', 'dst']) mkdirSync(join(rootfs, 'tmp', d), { recursive: true });
    writeFileSync(join(rootfs, 'tmp', 'src', 'hello'), 'hi');
    const script = [
      "const { execFileSync } = require('node:child_process');",
      "const { readdirSync } = require('node:fs');",
      "execFileSync('/usr/bin/mount', ['--bind', '/tmp/src', '/tmp/dst']);",
      "const mounted = readdirSync('/tmp/dst');",
      "execFileSync('/usr/bin/umount', ['/tmp/dst']);",
      "console.log(JSON.stringify([mounted, readdirSync('/tmp/dst')]));",
    ].join('\n');
    const r = await runCommand('unshare', ['--mount', 'chroot', rootfs, '/usr/local/bin/node', '-e', script], tmp.path);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [['hello'], []]);
  });

  const inRoot = (args: string[]): string[] => ['--userspec', spec.user, rootfs, ...args];

  it('runs as 65532 with nothing from the host: ztwim version, then ztwim up serves an X509-SVID to ztwim api fetch', async () => {
    const v = await runCommand('chroot', inRoot(['/usr/local/bin/ztwim', 'version']), tmp.path);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), VERSION);

    mkdirSync(join(rootfs, 'proc'));
    const port = await freePort();
    const script = `mount --bind /proc "$1/proc" && shift && exec chroot "$@"`;
    const up = spawn(
      'unshare',
      [
        '--mount',
        'sh',
        '-c',
        script,
        'sh',
        rootfs,
        ...inRoot([
          '/usr/local/bin/ztwim',
          'up',
          '-dataDir',
          '/tmp/state',
          '-serverPort',
          String(port),
          '-serverSocketPath',
          '/tmp/server.sock',
          '-socketPath',
          '/tmp/agent.sock',
          '-oidcPort',
          '0',
          '-metricsPort',
          '0',
        ]),
      ],
      { cwd: tmp.path, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(up);
    let out = '';
    up.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    up.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const fetched = await until(
      'an X509-SVID from ztwim up in the rootfs',
      async () => {
        if (up.exitCode !== null) assert.fail(`ztwim up exited ${up.exitCode}:\n${out}`);
        const r = await runCommand('chroot', inRoot(['/usr/local/bin/ztwim', 'api', 'fetch', 'x509', '-socketPath', '/tmp/agent.sock']), tmp.path, {
          timeoutMs: 15_000,
        });
        return r.status === 0 ? r.stdout : undefined;
      },
      90_000,
    );
    // the unix attestor names the user from the image's /etc/passwd
    assert.match(fetched, /SPIFFE ID:\t\tspiffe:\/\/example\.org\/user\/nonroot$/m);
    up.kill('SIGINT');
    const code = await new Promise<number | null>((res) => (up.exitCode !== null ? res(up.exitCode) : up.once('exit', (c) => res(c))));
    assert.equal(code, 0, out);
  });
});

describe('image.sh', () => {
  const tmp = makeTmpDir('ztwim-image-cache-');
  after(() => tmp.cleanup());

  it('builds an OCI layout tarball named for ctr, then finds it in the cache by its inputs hash; drops builds older than a day', async () => {
    const env = { ...process.env, ZTWIM_CACHE: tmp.path };
    const image = join(REPO_ROOT, 'scripts', 'k8s', 'image.sh');
    const images = join(tmp.path, 'images');
    mkdirSync(images);
    const twoDaysAgo = new Date(Date.now() - 48 * 3600 * 1000);
    const stale = join(images, `ztwim-${VERSION}-0000000000000000.tar`);
    const recent = join(images, `ztwim-${VERSION}-1111111111111111.tar`);
    const otherImage = join(images, `ztwim-spire-test-${VERSION}-0000000000000000.tar`);
    for (const f of [stale, recent, otherImage]) writeFileSync(f, '');
    for (const f of [stale, otherImage]) utimesSync(f, twoDaysAgo, twoDaysAgo);
    const cold = await runCommand('bash', [image], REPO_ROOT, { env, timeoutMs: 600_000 });
    assert.equal(cold.status, 0, cold.stderr);
    const c = JSON.parse(cold.stdout) as { tarball: string; name: string; cached: boolean; hash: string };
    assert.equal(c.cached, false);
    assert.equal(c.name, `docker.io/library/ztwim:${VERSION}`);
    assert.ok(c.tarball.startsWith(join(tmp.path, 'images') + '/'), c.tarball);
    assert.ok(c.tarball.includes(c.hash.slice(0, 16)));
    const index = await runCommand('tar', ['-xOf', c.tarball, 'index.json'], tmp.path);
    assert.equal(index.status, 0, index.stderr);
    const idx = JSON.parse(index.stdout) as { manifests: { annotations: Record<string, string> }[] };
    assert.equal(idx.manifests[0]?.annotations['io.containerd.image.name'], c.name);
    const listing = await runCommand('tar', ['-tf', c.tarball], tmp.path);
    assert.match(listing.stdout, /^oci-layout$/m);
    assert.deepEqual([existsSync(stale), existsSync(recent), existsSync(otherImage)], [false, true, true], 'only the same image, only when a day old');

    const warm = await runCommand('bash', [image], REPO_ROOT, { env, timeoutMs: 600_000 });
    assert.equal(warm.status, 0, warm.stderr);
    const w = JSON.parse(warm.stdout) as { tarball: string; cached: boolean; hash: string };
    assert.equal(w.cached, true);
    assert.equal(w.tarball, c.tarball);
    assert.equal(w.hash, c.hash);
  });

  it('refuses --import with no test node, naming what it needs', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, ZTWIM_CACHE: tmp.path, ZTWIM_K8S_DIR: join(tmp.path, 'no-cluster') };
    delete env.ZTWIM_K8S_CONTAINERD_SOCK;
    const r = await runCommand('bash', [join(REPO_ROOT, 'scripts', 'k8s', 'image.sh'), '--import'], REPO_ROOT, { env, timeoutMs: 600_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /ZTWIM_K8S_CONTAINERD_SOCK/);
  });
});
