// `ztwim server run` runs from one CommonJS file (server-run.cjs) compiled with a V8 code cache
// (bin/ztwim.js, scripts/build-cli.mjs): the first start writes the cache once the server is
// healthy, later starts use it, a cache V8 refuses is replaced, and the file loads only the
// external packages its config needs, as the ES-module route does (cli-startup.test.ts), with
// better-sqlite3's JavaScript inside it (only its compiled addon is loaded from node_modules).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually } from '@ztwim/testkit';
import { REPO_ROOT, ZTWIM_BIN } from '../interop/lib/peers.ts';
import { agentConf, serverConf } from '../interop/lib/server-conf.ts';
import { freePort } from '../interop/lib/spire-admin.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';

const dir = makeTmpDir('ztwim-cli-code-cache-');
after(() => dir.cleanup());
const bundleDir = join(REPO_ROOT, 'packages/cli/dist/bundle');

interface Start {
  readonly status: number | null;
  readonly stderr: string;
}

/** `ztwim <args>` until `ztwim <probe>` exits 0 (it serves), then SIGTERM; its exit status and stderr. */
async function runUntil(args: string[], probe: string[], cacheDir: string, extraEnv: Record<string, string> = {}): Promise<Start> {
  const child = spawn(process.execPath, [ZTWIM_BIN, ...args], {
    cwd: dir.path,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ZTWIM_CODE_CACHE_DIR: cacheDir, NODE_DEBUG: 'ztwim', ...extraEnv },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  try {
    await eventually(
      `ztwim ${args.join(' ')} to serve`,
      () => {
        const h = spawnSync(process.execPath, [ZTWIM_BIN, ...probe], { encoding: 'utf8', timeout: 30_000 });
        if (h.status === 0) return true;
        if (child.exitCode !== null) throw new Error(`ztwim ${args.join(' ')} exited (${child.exitCode}) before it served`);
        return false;
      },
      { timeoutMs: 90_000, intervalMs: 100 },
    ).catch((e: unknown) => assert.fail(`${String(e)}: ${stderr}`));
  } finally {
    child.kill('SIGTERM');
  }
  return { status: await exited, stderr };
}

/** One `ztwim server run` until it is healthy, then SIGTERM; its exit status and stderr. */
async function startOnce(name: string, cacheDir: string, extraEnv: Record<string, string> = {}): Promise<Start> {
  const socketPath = dir.file(`${name}.sock`);
  const conf = dir.write(`${name}.conf`, serverConf({ port: 0, socketPath, trustDomain: 'example.org', dataDir: dir.file(`${name}-data`) }));
  return await runUntil(['server', 'run', '-config', conf], ['server', 'healthcheck', '-socketPath', socketPath], cacheDir, extraEnv);
}

const cacheFiles = (d: string): string[] => readdirSync(d).filter((f) => f.endsWith('.v8cache'));

describe('ztwim server run from the code-cached bundle', () => {
  it('server-run.json names the built file and its SHA-256', () => {
    const manifest = JSON.parse(readFileSync(join(bundleDir, 'server-run.json'), 'utf8')) as { file: string; sha256: string };
    assert.equal(manifest.file, 'server-run.cjs');
    assert.equal(
      createHash('sha256')
        .update(readFileSync(join(bundleDir, manifest.file)))
        .digest('hex'),
      manifest.sha256,
    );
  });

  it('the first start writes the cache once healthy, the next uses it, a refused one is replaced', async () => {
    const cacheDir = dir.file('cache');
    // An older bundle's cache is removed when the new one is saved; other files stay.
    mkdirSync(cacheDir);
    writeFileSync(join(cacheDir, 'server-run.cjs-0123456789abcdef-v20.0.0-x64.v8cache'), 'old');
    writeFileSync(join(cacheDir, 'server-run.cjs-kept.js'), 'not a cache');
    const first = await startOnce('first', cacheDir);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /code cache: none/);
    assert.match(first.stderr, /code cache: wrote /);
    const files = cacheFiles(cacheDir);
    assert.equal(files.length, 1, files.join(', '));
    const name = files[0] ?? '';
    assert.ok(existsSync(join(cacheDir, 'server-run.cjs-kept.js')));
    assert.match(name, new RegExp(`^server-run\\.cjs-[0-9a-f]{16}-${process.version.replace(/\./g, '\\.')}-${process.arch}\\.v8cache$`));

    const second = await startOnce('second', cacheDir);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /code cache: used/);
    assert.doesNotMatch(second.stderr, /code cache: wrote/);

    // Garbage under the cache's name: V8 refuses it, the server starts all the same and saves a good one.
    writeFileSync(join(cacheDir, name), Buffer.alloc(4096, 7));
    const third = await startOnce('third', cacheDir);
    assert.equal(third.status, 0, third.stderr);
    assert.match(third.stderr, /code cache: rejected/);
    assert.match(third.stderr, /code cache: wrote /);
    const fourth = await startOnce('fourth', cacheDir);
    assert.match(fourth.stderr, /code cache: used/);
    assert.deepEqual(cacheFiles(cacheDir), [name]);
  });

  it("loads better-sqlite3's addon for SQLite (its JavaScript is in the file), and not pg, the Kubernetes client, ACME or the X.509 library", async () => {
    const r = await startOnce('modules', dir.file('cache-modules'), { NODE_DEBUG: 'ztwim,module' });
    assert.equal(r.status, 0, r.stderr);
    const requested = [...r.stderr.matchAll(/Module\._load REQUEST (\S+) parent: (\S+)/g)].filter((m) => m[2]?.endsWith('/server-run.cjs')).map((m) => m[1]);
    // By path (nativeBinding), not through better-sqlite3's package entry or the `bindings` lookup.
    assert.ok(
      requested.some((m) => m?.endsWith('/better-sqlite3/build/Release/better_sqlite3.node')),
      requested.join(' '),
    );
    assert.ok(!requested.includes('better-sqlite3') && !requested.includes('bindings'), requested.join(' '));
    for (const p of ['pg', '@kubernetes/client-node', 'acme-client', '@peculiar/x509', 'reflect-metadata']) assert.ok(!requested.includes(p), `${p} required`);
  });

  it('with k8s_psat: imports the Kubernetes client (import() from the cached script), and a missing kube_config_file stops the start naming it', async () => {
    // A cache written by another process first: Node 20 loses a script's importModuleDynamically
    // when the script comes from such a cache (the k8s e2e's server failed so), so the bundle's
    // import() must work without it.
    const cacheDir = dir.file('cache-psat');
    const warm = await startOnce('psat-warm', cacheDir);
    assert.equal(warm.status, 0, warm.stderr);
    const kube = dir.file('no-such-kubeconfig');
    const conf = dir.write(
      'psat.conf',
      serverConf({
        port: 0,
        socketPath: dir.file('psat.sock'),
        trustDomain: 'example.org',
        dataDir: dir.file('psat-data'),
        extraPlugins: `  NodeAttestor "k8s_psat" { plugin_data { clusters = { "prod" = { service_account_allow_list = ["spire:agent"], kube_config_file = "${kube}" } } } }`,
      }),
    );
    const r = spawnSync(process.execPath, [ZTWIM_BIN, 'server', 'run', '-config', conf], {
      cwd: dir.path,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, ZTWIM_CODE_CACHE_DIR: cacheDir, NODE_DEBUG: 'ztwim' },
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /code cache: used/);
    assert.ok(
      r.stderr.includes(`plugins.NodeAttestor.k8s_psat.plugin_data.clusters.prod.kube_config_file: k8s: cannot load kubeconfig ${kube}: no such file`),
      r.stderr,
    );
  });

  it('ztwim agent run: with ZTWIM_CODE_CACHE=1 its own file and cache (agent-run.cjs), written once it serves, used by the next start; by default and with ZTWIM_CODE_CACHE=0 the ES modules', async () => {
    const sock = dir.file('agent-srv.sock');
    const port = await freePort();
    const conf = dir.write('agent-srv.conf', serverConf({ port, socketPath: sock, trustDomain: 'example.org', dataDir: dir.file('agent-srv-data') }));
    const server = spawn(process.execPath, [ZTWIM_BIN, 'server', 'run', '-config', conf], { cwd: dir.path, stdio: 'ignore' });
    const ztwim = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, [ZTWIM_BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
    /** Polls `args` until it exits 0 (or fails the test after 90 s, or if `child` exits first). */
    const until = (args: string[], child: ReturnType<typeof spawn>, what: string): Promise<unknown> =>
      eventually(
        `${what} to serve`,
        () => {
          if (ztwim(args).status === 0) return true;
          if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode})`);
          return false;
        },
        { timeoutMs: 90_000, intervalMs: 100 },
      );
    try {
      await until(['server', 'healthcheck', '-socketPath', sock], server, 'server');
      const [host, uid] = ['spiffe://example.org/host', process.getuid?.() ?? 0];
      const entryFlags = ['-parentID', host, '-spiffeID', 'spiffe://example.org/w', '-selector', `unix:uid:${uid}`];
      const entry = ztwim(['server', 'entry', 'create', '-socketPath', sock, ...entryFlags]);
      assert.equal(entry.status, 0, entry.stderr);
      const bundlePath = dir.write('agent-srv-bundle.pem', ztwim(['server', 'bundle', 'show', '-socketPath', sock]).stdout);
      const cacheDir = dir.file('cache-agent');
      /** One agent start until it serves an X509-SVID, then SIGTERM; its exit status and stderr. */
      const agentStart = async (name: string, extraEnv: Record<string, string> = {}): Promise<Start> => {
        const token = /Token: (\S+)/.exec(ztwim(['server', 'token', 'generate', '-socketPath', sock, '-spiffeID', host]).stdout)?.[1];
        assert.ok(token !== undefined, 'no join token');
        const agentSock = dir.file(`${name}.sock`);
        const aconf = dir.write(
          `${name}.conf`,
          agentConf({
            serverPort: port,
            trustDomain: 'example.org',
            dataDir: dir.file(`${name}-data`),
            socketPath: agentSock,
            joinToken: token,
            trustBundlePath: bundlePath,
            keyManager: 'memory',
          }),
        );
        return await runUntil(['agent', 'run', '-config', aconf], ['api', 'fetch', 'x509', '-socketPath', agentSock], cacheDir, extraEnv);
      };
      // The agent takes the cached route only when asked (bin/ztwim.js: memory over start time).
      const first = await agentStart('agent-first', { ZTWIM_CODE_CACHE: '1' });
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stderr, /code cache: none/);
      assert.match(first.stderr, /code cache: wrote /);
      const files = cacheFiles(cacheDir);
      assert.equal(files.length, 1, files.join(', '));
      assert.match(files[0] ?? '', /^agent-run\.cjs-[0-9a-f]{16}-/);
      const second = await agentStart('agent-second', { ZTWIM_CODE_CACHE: '1' });
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stderr, /code cache: used/);
      assert.doesNotMatch(second.stderr, /code cache: wrote/);
      const esm = await agentStart('agent-esm', { ZTWIM_CODE_CACHE: '0' });
      assert.equal(esm.status, 0, esm.stderr);
      assert.doesNotMatch(esm.stderr, /code cache/);
      const byDefault = await agentStart('agent-default');
      assert.equal(byDefault.status, 0, byDefault.stderr);
      assert.doesNotMatch(byDefault.stderr, /code cache/);
    } finally {
      server.kill('SIGTERM');
    }
  });
});
