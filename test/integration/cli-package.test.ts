// `ztwim` outside the clone, as the README tells a user to put it on PATH: `npm pack` of the CLI
// and every workspace package it needs, `npm install -g --prefix <empty dir>` of the tarballs
// (offline from the tarballs and the npm cache where it can; the registry for what is missing),
// then `ztwim --help` and `ztwim up` from a directory that is not the clone. The SO_PEERCRED addon
// compiles during the install. better-sqlite3 takes its prebuilt binary, as it does for a user
// (prebuild-install downloads it from the project's GitHub releases): here that host is
// unreachable, so a local HTTP server on 127.0.0.1 serves the binary the clone's own `npm ci`
// built, through prebuild-install's documented mirror variable. Compiling SQLite instead took
// ~4 minutes of the CI run and checks nothing of ours.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../interop/lib/net.ts';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { until } from '../interop/lib/wait.ts';
import { runCommand, type CliRun } from '../interop/lib/ztwim-cli.ts';

/** The workspaces `@ztwim/cli` depends on at run time, and itself (testkit is test-only). */
const PACKAGES = ['spiffe', 'core', 'proto', 'peercred', 'k8s', 'acme', 'server', 'agent', 'oidc', 'console', 'csi', 'registrar', 'operator', 'cli'];

const run = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 1_800_000): Promise<CliRun> =>
  runCommand(cmd, args, cwd, { env, timeoutMs });

/** The better-sqlite3 the clone's `npm ci` installed and built. */
const SQLITE_DIR = join(REPO_ROOT, 'node_modules', 'better-sqlite3');
const SQLITE_VERSION = (JSON.parse(readFileSync(join(SQLITE_DIR, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * A prebuild mirror for better-sqlite3 (prebuild-install's `npm_config_better_sqlite3_binary_host`):
 * GET /v<version>/better-sqlite3-v<version>-node-v<abi>-linux-<arch>.tar.gz answers a tarball of
 * the clone's build/Release/better_sqlite3.node for the clone's version, 404 for any other (the
 * install then compiles it). `fetched` lists the paths it served.
 */
async function sqlitePrebuildMirror(tarball: string): Promise<{ host: string; fetched: string[]; server: Server }> {
  const want = `/v${SQLITE_VERSION}/better-sqlite3-v${SQLITE_VERSION}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const fetched: string[] = [];
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === want) {
      fetched.push(req.url);
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(readFileSync(tarball));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const addr = server.address();
  assert.ok(addr !== null && typeof addr === 'object');
  return { host: `http://127.0.0.1:${addr.port}`, fetched, server };
}

/** Where prebuild-install keeps a downloaded prebuild (its util.cachedPrebuild): removed after the test. */
function prebuildCachePath(url: string): string {
  const digest = createHash('sha512').update(url).digest('hex').slice(0, 6);
  const cache = process.env['npm_config_cache'] ?? join(homedir(), '.npm');
  return join(cache, '_prebuilds', `${digest}-${(url.split('/').pop() ?? '').replace(/[^a-zA-Z0-9.]+/g, '-')}`);
}

describe('the packed CLI installed into an empty prefix', () => {
  const tmp = makeTmpDir('ztwim-pkg-');
  const children: ChildProcess[] = [];
  const cleanups: Array<() => void> = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const c of cleanups) c();
    tmp.cleanup();
  });
  const packs = join(tmp.path, 'packs');
  const prefix = join(tmp.path, 'prefix');
  const elsewhere = join(tmp.path, 'elsewhere');
  const bin = join(prefix, 'bin', 'ztwim');

  it('npm pack gives tarballs with the compiled code, no tests', async () => {
    mkdirSync(packs);
    const r = await run('npm', ['pack', '--pack-destination', packs, ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`])], REPO_ROOT);
    assert.equal(r.status, 0, r.stderr);
    const tarballs = readdirSync(packs).sort();
    assert.deepEqual(tarballs, PACKAGES.map((p) => `ztwim-${p}-0.1.0.tgz`).sort());
    const list = await run('tar', ['tzf', join(packs, 'ztwim-cli-0.1.0.tgz')], tmp.path);
    assert.match(list.stdout, /^package\/bin\/ztwim\.js$/m);
    assert.match(list.stdout, /^package\/dist\/main\.js$/m);
    assert.doesNotMatch(list.stdout, /\.test\.js$/m);
    // `server run`'s CommonJS bundle ships; a V8 code cache made in the tree does not (bin/ztwim.js).
    assert.match(list.stdout, /^package\/dist\/bundle\/server-run\.cjs$/m);
    assert.match(list.stdout, /^package\/dist\/bundle\/server-run\.json$/m);
    assert.doesNotMatch(list.stdout, /\.v8cache$/m);
    const pc = await run('tar', ['tzf', join(packs, 'ztwim-peercred-0.1.0.tgz')], tmp.path);
    assert.match(pc.stdout, /^package\/native\/peercred\.c$/m, 'the addon source ships: it is built at install');
  });

  it('npm install -g --prefix of the tarballs puts a working ztwim on PATH; --help and up work from another directory', async (t) => {
    const prebuild = join(tmp.path, 'better-sqlite3-prebuild.tar.gz');
    const tar = await run('tar', ['czf', prebuild, '-C', SQLITE_DIR, 'build/Release/better_sqlite3.node'], tmp.path);
    assert.equal(tar.status, 0, tar.stderr);
    const mirror = await sqlitePrebuildMirror(prebuild);
    cleanups.push(() => {
      mirror.server.close();
      for (const f of mirror.fetched) rmSync(prebuildCachePath(mirror.host + f), { force: true });
    });
    const env = {
      ...process.env,
      npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr',
      npm_config_better_sqlite3_binary_host: mirror.host,
    };
    const tarballs = readdirSync(packs).map((f) => join(packs, f));
    const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], tmp.path, env);
    assert.equal(inst.status, 0, inst.stderr);
    t.diagnostic(
      mirror.fetched.length > 0
        ? `better-sqlite3 ${SQLITE_VERSION}: prebuilt binary from the local mirror`
        : `better-sqlite3: npm resolved another version than the clone's ${SQLITE_VERSION}, compiled during the install`,
    );
    mkdirSync(elsewhere);
    const pathEnv = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` };
    const help = await run('ztwim', ['--help'], elsewhere, pathEnv, 30_000);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout + help.stderr, /\bup\b/);
    assert.match(help.stdout + help.stderr, /\bserver\b/);

    const agentSock = join(tmp.path, 'agent.sock');
    const up = spawn(
      bin,
      [
        'up',
        '-dataDir',
        join(elsewhere, 'state'),
        '-serverPort',
        String(await freePort()),
        '-serverSocketPath',
        join(tmp.path, 'server.sock'),
        '-socketPath',
        agentSock,
        '-oidcPort',
        '0',
        '-metricsPort',
        '0',
      ],
      {
        cwd: elsewhere,
        env: pathEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(up);
    let out = '';
    up.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    up.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const fetched = await until(
      'an X509-SVID from the installed ztwim up',
      async () => {
        if (up.exitCode !== null) assert.fail(`ztwim up exited ${up.exitCode}:\n${out}`);
        const r = await run(bin, ['agent', 'api', 'fetch', 'x509', '-socketPath', agentSock], elsewhere, pathEnv, 15_000);
        return r.status === 0 ? r.stdout : undefined;
      },
      60_000,
    );
    assert.match(fetched, /SPIFFE ID:\t\tspiffe:\/\/example\.org\/user\//, out);
    up.kill('SIGINT');
    const code = await new Promise<number | null>((res) => up.once('exit', (c) => res(c)));
    assert.equal(code, 0, out);
  });
});
