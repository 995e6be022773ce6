// A `ztwim` command loads only what it needs: the command table imports each command group when
// it runs, so an admin command (`server entry show`) or a Workload API command (`api fetch`)
// never loads the server, the agent, the OIDC provider, the datastores (better-sqlite3, pg), the
// X.509 library or the logger/metrics stack. Checked on what a process really resolves (a loader
// hook records every module URL), for the bundled command users run (bin/ztwim.js, built by
// `npm run build`) and for the TypeScript sources the tests run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT, ZTWIM_BIN } from '../interop/lib/peers.ts';
import { serverConf } from '../interop/lib/server-conf.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';

const dir = makeTmpDir('ztwim-cli-startup-');
after(() => dir.cleanup());
const missing = dir.file('no-such.sock');
const RECORD = join(REPO_ROOT, 'test/integration/fixtures/record-resolutions.mjs');

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
    env: { ...process.env, ZTWIM_RECORD_RESOLUTIONS: file },
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
  return urls.filter((u) => (source ? HEAVY : HEAVY_BUNDLED).some((re) => re.test(u)));
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
