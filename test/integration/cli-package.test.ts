// `ztwim` outside the clone, as the README tells a user to put it on PATH: `npm pack` of the CLI
// and every workspace package it needs, `npm install -g --prefix <empty dir>` of the tarballs
// (offline from the tarballs and the npm cache where it can; the registry for what is missing),
// then `ztwim --help` and `ztwim up` from a directory that is not the clone. Slow (better-sqlite3
// and the SO_PEERCRED addon compile during the install): minutes on a 2-core machine.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../interop/lib/net.ts';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { runCommand, type CliRun } from '../interop/lib/ztwim-cli.ts';

/** The workspaces `@ztwim/cli` depends on at run time, and itself (testkit is test-only). */
const PACKAGES = ['spiffe', 'core', 'proto', 'peercred', 'k8s', 'acme', 'server', 'agent', 'oidc', 'console', 'csi', 'registrar', 'operator', 'cli'];

const run = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 1_800_000): Promise<CliRun> =>
  runCommand(cmd, args, cwd, { env, timeoutMs });

describe('the packed CLI installed into an empty prefix', () => {
  const tmp = makeTmpDir('ztwim-pkg-');
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
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
    const pc = await run('tar', ['tzf', join(packs, 'ztwim-peercred-0.1.0.tgz')], tmp.path);
    assert.match(pc.stdout, /^package\/native\/peercred\.c$/m, 'the addon source ships: it is built at install');
  });

  it('npm install -g --prefix of the tarballs puts a working ztwim on PATH; --help and up work from another directory', async () => {
    const env = { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' };
    const tarballs = readdirSync(packs).map((f) => join(packs, f));
    const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], tmp.path, env);
    assert.equal(inst.status, 0, inst.stderr);
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
    const end = Date.now() + 60_000;
    let fetched = '';
    while (Date.now() < end) {
      if (up.exitCode !== null) assert.fail(`ztwim up exited ${up.exitCode}:\n${out}`);
      const r = await run(bin, ['agent', 'api', 'fetch', 'x509', '-socketPath', agentSock], elsewhere, pathEnv, 15_000);
      if (r.status === 0) {
        fetched = r.stdout;
        break;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.match(fetched, /SPIFFE ID:\t\tspiffe:\/\/example\.org\/user\//, out);
    up.kill('SIGINT');
    const code = await new Promise<number | null>((res) => up.once('exit', (c) => res(c)));
    assert.equal(code, 0, out);
  });
});
