// A `ztwim` command loads only what it needs: the command table imports each command group when
// it runs, so an admin command (`server entry show`) or a Workload API command (`api fetch`)
// never loads the server, the agent, the OIDC provider, the datastores (better-sqlite3, pg), the
// X.509 library or the logger/metrics stack. Checked on what a process really resolves (a loader
// hook records every module URL), for the bundled command users run (bin/ztwim.js, built by
// `npm run build`) and for the TypeScript sources the tests run.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from '@ztwim/testkit';
import { REPO_ROOT, ZTWIM_BIN } from '../interop/lib/peers.ts';
import { agentConf, serverConf } from '../interop/lib/server-conf.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';

const dir = makeTmpDir('ztwim-cli-startup-');
after(() => dir.cleanup());
const missing = dir.file('no-such.sock');
const RECORD = join(REPO_ROOT, 'test/integration/fixtures/record-resolutions.mjs');
/**
 * `ztwim server run` normally runs one code-cached CommonJS file (bin/ztwim.js), built from the
 * same sources with the same lazy imports, whose modules a loader hook cannot see: the runs here
 * take the ES-module route every other command takes, so each module load is on record.
 * cli-code-cache.test.ts checks the CommonJS route.
 */
const ESM_ROUTE = { ZTWIM_CODE_CACHE: '0' };

/** The module URLs a `ztwim` run resolved, and its exit status and stderr. */
function resolutions(source: boolean, args: string[]): { urls: string[]; status: number | null; stderr: string } {
  const file = dir.file(`resolved-${Math.random().toString(36).slice(2)}.txt`);
  const node = source
    ? ['--conditions=ztwim-source', '--import', import.meta.resolve('tsx'), '--import', RECORD, join(REPO_ROOT, 'packages/cli/src/main.ts')]
    : ['--import', RECORD, ZTWIM_BIN];
  const r = spawnSync(process.execPath, [...node, ...args], {
    cwd: dir.path,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, ZTWIM_RECORD_RESOLUTIONS: file, ...ESM_ROUTE },
  });
  let urls: string[] = [];
  try {
    urls = readFileSync(file, 'utf8')
      .split('\n')
      .filter((u) => u !== '');
  } catch {
    // nothing resolved: the assertions below report it
  }
  return { urls, status: r.status, stderr: r.stderr };
}

/**
 * The source files behind the URLs a bundled run loaded: each chunk of packages/cli/dist/bundle
 * stands for the modules esbuild put in it (the `sources` of its source map); other URLs (the
 * external packages, node: built-ins) stand for themselves. Without this a bundled run shows only
 * chunk names, and a check for, say, prom-client could never fail.
 */
function loadedSources(urls: readonly string[]): string[] {
  const out = new Set<string>();
  for (const u of urls) {
    if (!u.startsWith('file:')) {
      out.add(u);
      continue;
    }
    const path = fileURLToPath(u);
    if (!path.includes('/packages/cli/dist/bundle/') || !existsSync(`${path}.map`)) {
      out.add(path);
      continue;
    }
    const map = JSON.parse(readFileSync(`${path}.map`, 'utf8')) as { sources: string[] };
    for (const src of map.sources) out.add(resolve(dirname(path), src));
  }
  return [...out];
}

/** What an admin or Workload API command must never load. */
const HEAVY = [
  /\/packages\/(server|agent|oidc|csi)\/src\//,
  /\/node_modules\/(better-sqlite3|pg|pg-pool|@peculiar\/x509|reflect-metadata|acme-client|@kubernetes\/client-node)\//,
];
/**
 * Nor, bundled, the logger and metrics libraries (from source a package's index.ts re-exports
 * them to every importer; the bundle imports what each module uses, scripts/build-cli.mjs).
 */
const HEAVY_BUNDLED = [...HEAVY, /\/node_modules\/(pino|prom-client)\//];

function heavyIn(urls: readonly string[], source: boolean): string[] {
  return (source ? urls : loadedSources(urls)).filter((u) => (source ? HEAVY : HEAVY_BUNDLED).some((re) => re.test(u)));
}

describe('ztwim loads only what a command needs', () => {
  for (const source of [false, true]) {
    const how = source ? 'from source' : 'bundled (bin/ztwim.js)';
    it(`server entry show, ${how}: no server, agent, OIDC, datastore or X.509 code`, () => {
      const r = resolutions(source, ['server', 'entry', 'show', '-socketPath', missing]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /connect: no such file or directory/);
      assert.ok(r.urls.length > 0, 'the hook recorded nothing');
      assert.deepEqual(heavyIn(r.urls, source), []);
    });

    it(`api fetch x509, ${how}: no server, agent, OIDC, datastore or X.509 code`, () => {
      const r = resolutions(source, ['api', 'fetch', 'x509', '-socketPath', missing]);
      assert.equal(r.status, 1, r.stderr);
      assert.deepEqual(heavyIn(r.urls, source), []);
    });
  }

  it('server run, bundled: loads the server and its datastore (the check above can see them)', () => {
    // A datastore path under a regular file: the server loads SQLite, then fails to open it.
    dir.write('not-a-dir', '');
    const conf = dir.write(
      'server.conf',
      `server {
  bind_address = "127.0.0.1"
  bind_port = "0"
  socket_path = "${dir.file('api.sock')}"
  trust_domain = "example.org"
  data_dir = "${dir.file('data')}"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${dir.file('not-a-dir')}/datastore.sqlite3"
    }
  }
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
}
`,
    );
    const r = resolutions(false, ['server', 'run', '-config', conf]);
    assert.notEqual(r.status, 0, r.stderr);
    assert.ok(
      r.urls.some((u) => /\/node_modules\/better-sqlite3\//.test(u)),
      r.urls.join('\n'),
    );
    assert.deepEqual(
      heavyIn(r.urls, false).filter((u) => /\/node_modules\/pg\//.test(u)),
      [],
      'pg loaded for a SQLite datastore',
    );
    assert.deepEqual(
      r.urls.filter((u) => /\/node_modules\/@kubernetes\/client-node\//.test(u)),
      [],
      'the Kubernetes client loaded without a k8s plugin',
    );
  });

  it('server run with k8s_psat, bundled: loads the Kubernetes client, and a missing kube_config_file stops the start naming it', () => {
    const kube = dir.file('no-such-kubeconfig');
    const conf = dir.write(
      'server-psat.conf',
      serverConf({
        port: 0,
        socketPath: dir.file('psat-api.sock'),
        trustDomain: 'example.org',
        dataDir: dir.file('psat-data'),
        extraPlugins: `  NodeAttestor "k8s_psat" { plugin_data { clusters = { "prod" = { service_account_allow_list = ["spire:agent"], kube_config_file = "${kube}" } } } }`,
      }),
    );
    const r = resolutions(false, ['server', 'run', '-config', conf]);
    assert.notEqual(r.status, 0, r.stderr);
    assert.ok(
      r.urls.some((u) => /\/node_modules\/@kubernetes\/client-node\//.test(u)),
      r.urls.join('\n'),
    );
    assert.ok(
      r.stderr.includes(`plugins.NodeAttestor.k8s_psat.plugin_data.clusters.prod.kube_config_file: k8s: cannot load kubeconfig ${kube}: no such file`),
      r.stderr,
    );
  });
});

/** A daemon (`ztwim server run` / `agent run`, bundled) whose module loads are being recorded. */
interface Recorded {
  readonly child: ChildProcess;
  readonly file: string;
  stderr: string;
}

function startRecorded(args: string[]): Recorded {
  const file = dir.file(`resolved-${Math.random().toString(36).slice(2)}.txt`);
  const child = spawn(process.execPath, ['--import', RECORD, ZTWIM_BIN, ...args], {
    cwd: dir.path,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ZTWIM_RECORD_RESOLUTIONS: file, ...ESM_ROUTE },
  });
  const r: Recorded = { child, file, stderr: '' };
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    r.stderr += d;
  });
  return r;
}

/** Stops a recorded daemon and returns the source files it loaded (loadedSources). */
async function stopRecorded(r: Recorded): Promise<string[]> {
  if (r.child.exitCode === null && r.child.signalCode === null) {
    const exited = new Promise((res) => r.child.once('exit', res));
    r.child.kill('SIGTERM');
    await exited;
  }
  return loadedSources(
    readFileSync(r.file, 'utf8')
      .split('\n')
      .filter((u) => u !== ''),
  );
}

/** Runs a `ztwim` command (bundled) to completion. */
function ztwim(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [ZTWIM_BIN, ...args], { cwd: dir.path, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Polls a `ztwim` command until it exits 0 (the machine may be loaded: up to 90 s). */
async function until(what: string, args: string[], d: Recorded): Promise<void> {
  await eventually(
    what,
    () => {
      if (ztwim(args).status === 0) return true;
      if (d.child.exitCode !== null) throw new Error(`${what}: the daemon exited (${d.child.exitCode})`);
      return false;
    },
    { timeoutMs: 90_000, intervalMs: 200 },
  ).catch((e: unknown) => assert.fail(`${String(e)}: ${d.stderr}`));
}

/**
 * Plugins a daemon must load only when its config names them: the Kubernetes client and k8s
 * plugins (@ztwim/k8s, k8s_psat, the k8s workload attestor, the k8sbundle notifier), x509pop, the
 * PostgreSQL datastore and pg, ACME, and prom-client (only with a `telemetry` block). (The config
 * parser's own pieces, such as the PostgreSQL connection-string check, are not plugins.)
 */
const PLUGINS = [
  /\/packages\/k8s\/src\//,
  /\/node_modules\/(@kubernetes\/client-node|pg|pg-pool|acme-client|prom-client)\//,
  /\/packages\/server\/src\/(attestation\/(k8s-psat|x509pop)\.ts|notifier\/k8s-bundle\.ts|datastore\/postgres\/postgres-datastore\.ts)/,
  /\/packages\/agent\/src\/attestation\/workload\/k8s[^/]*\.ts$/,
  // the web console and its OIDC client, loaded only for a config with a console { } block
  /\/packages\/console\/src\/(console|http-api|oidc-login|admin)\.ts$/,
  /\/node_modules\/(openid-client|oauth4webapi)\//,
];
const pluginsIn = (sources: readonly string[]): string[] => sources.filter((s) => PLUGINS.some((re) => re.test(s)));

describe('ztwim daemons load only the plugins their config names (bundled)', () => {
  it('server run to SERVING and agent run to serving an SVID, SQLite and join_token and unix: no k8s, pg, ACME, x509pop, prom-client or console code', async (t) => {
    const { freePort } = await import('../interop/lib/net.ts');
    const port = await freePort();
    const sock = dir.file('daemons-api.sock');
    const conf = dir.write('daemons-server.conf', serverConf({ port, socketPath: sock, trustDomain: 'example.org', dataDir: dir.file('daemons-data') }));
    const server = startRecorded(['server', 'run', '-config', conf]);
    let agent: Recorded | undefined;
    t.after(async () => {
      if (agent !== undefined) await stopRecorded(agent).catch(() => undefined);
      await stopRecorded(server).catch(() => undefined);
    });
    await until('server healthcheck', ['server', 'healthcheck', '-socketPath', sock], server);

    const token = /Token: (\S+)/.exec(ztwim(['server', 'token', 'generate', '-socketPath', sock, '-spiffeID', 'spiffe://example.org/host']).stdout)?.[1];
    assert.ok(token !== undefined, 'no join token');
    const entry = ztwim([
      'server',
      'entry',
      'create',
      '-socketPath',
      sock,
      '-parentID',
      'spiffe://example.org/host',
      '-spiffeID',
      'spiffe://example.org/w',
      '-selector',
      `unix:uid:${process.getuid?.() ?? 0}`,
    ]);
    assert.equal(entry.status, 0, entry.stderr);
    const bundle = ztwim(['server', 'bundle', 'show', '-socketPath', sock]);
    assert.equal(bundle.status, 0, bundle.stderr);
    const agentSock = dir.file('daemons-agent.sock');
    const aconf = dir.write(
      'daemons-agent.conf',
      agentConf({
        serverPort: port,
        trustDomain: 'example.org',
        dataDir: dir.file('daemons-agent-data'),
        socketPath: agentSock,
        joinToken: token,
        trustBundlePath: dir.write('daemons-bundle.pem', bundle.stdout),
        keyManager: 'memory',
      }),
    );
    agent = startRecorded(['agent', 'run', '-config', aconf]);
    await until('agent api fetch x509', ['api', 'fetch', 'x509', '-socketPath', agentSock], agent);

    const agentSources = await stopRecorded(agent);
    const serverSources = await stopRecorded(server);
    // What they did load (so the check below sees bundled modules at all).
    assert.ok(
      serverSources.some((s) => s.endsWith('/packages/server/src/server.ts')),
      serverSources.join('\n'),
    );
    assert.ok(serverSources.some((s) => s.endsWith('/packages/server/src/datastore/sqlite/sqlite-datastore.ts')));
    assert.ok(
      agentSources.some((s) => s.endsWith('/packages/agent/src/attestation/workload/unix.ts')),
      agentSources.join('\n'),
    );
    assert.deepEqual(pluginsIn(serverSources), [], 'server plugins loaded that its config does not name');
    assert.deepEqual(pluginsIn(agentSources), [], 'agent plugins loaded that its config does not name');
    // Their configs are HCL: the YAML parser stays out too.
    const yaml = (sources: readonly string[]): string[] => sources.filter((s) => /\/node_modules\/yaml\//.test(s));
    assert.deepEqual(yaml(serverSources), [], 'the server loaded the YAML parser for an HCL config');
    assert.deepEqual(yaml(agentSources), [], 'the agent loaded the YAML parser for an HCL config');
  });

  it('server validate with a YAML config: loads the YAML parser and reads the file (the check above can see it)', () => {
    const conf = dir.write(
      'server.yaml',
      [
        'server:',
        '  bind_address: 127.0.0.1',
        '  bind_port: "8081"',
        `  socket_path: ${dir.file('yaml-api.sock')}`,
        '  trust_domain: example.org',
        `  data_dir: ${dir.file('yaml-data')}`,
        'plugins:',
        '  DataStore:',
        '    sql:',
        '      plugin_data:',
        '        database_type: sqlite3',
        `        connection_string: ${dir.file('yaml.sqlite3')}`,
        '  KeyManager:',
        '    memory:',
        '      plugin_data: {}',
        '  NodeAttestor:',
        '    join_token:',
        '      plugin_data: {}',
        '',
      ].join('\n'),
    );
    const r = resolutions(false, ['server', 'validate', '-config', conf]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      loadedSources(r.urls).some((s) => /\/node_modules\/yaml\//.test(s)),
      r.urls.join('\n'),
    );
  });

  it('agent run with WorkloadAttestor "k8s": loads the k8s workload attestor (the check above can see it)', async () => {
    const aconf = dir.write(
      'k8s-agent.conf',
      agentConf({
        serverPort: 1,
        trustDomain: 'example.org',
        dataDir: dir.file('k8s-agent-data'),
        socketPath: dir.file('k8s-agent.sock'),
        joinToken: 'unused',
        keyManager: 'memory',
        trustBundlePath: dir.write('k8s-bundle.pem', ''),
        pluginsExtra: `  WorkloadAttestor "k8s" { plugin_data {\n    node_name = "node-1"\n    token_path = "${dir.file('no-such-token')}"\n  } }\n`,
      }),
    );
    const agent = startRecorded(['agent', 'run', '-config', aconf]);
    const exited = await eventually('the agent to stop on the missing token', () => agent.child.exitCode !== null || agent.child.signalCode !== null, {
      timeoutMs: 60_000,
      intervalMs: 100,
    }).catch(() => false);
    const sources = await stopRecorded(agent);
    assert.ok(exited, `the agent kept running: ${agent.stderr}`);
    assert.ok(
      sources.some((s) => s.endsWith('/packages/agent/src/attestation/workload/k8s.ts')),
      `${agent.stderr}\n${sources.join('\n')}`,
    );
  });
});
