import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configuredPlugins } from './plugins.ts';

const pg = (connectionString: string, roConnectionString?: string) =>
  ({
    type: 'postgres',
    connectionString,
    ...(roConnectionString === undefined ? {} : { roConnectionString }),
    maxOpenConns: 10,
    maxIdleConns: 2,
    connMaxLifetimeMs: 0,
  }) as const;

describe('configuredPlugins', () => {
  it("names each configured plugin as SPIRE's config does, in config order", () => {
    const plugins = configuredPlugins({
      dataStore: { type: 'sqlite3', path: '/var/lib/ztwim/datastore.sqlite3' },
      keyManager: { type: 'disk', path: '/var/lib/ztwim/keys.json' },
      nodeAttestors: {
        joinToken: true,
        x509pop: { mode: 'external_pki', caBundlePaths: ['/etc/ca.pem'], spiffePrefix: '/x509pop/' },
        k8sPsat: {
          clusters: [
            { name: 'east', serviceAccountAllowList: [], audience: [], kubeConfigFile: '', allowedNodeLabelKeys: [], allowedPodLabelKeys: [] },
            { name: 'west', serviceAccountAllowList: [], audience: [], kubeConfigFile: '', allowedNodeLabelKeys: [], allowedPodLabelKeys: [] },
          ],
        },
      },
      notifiers: { k8sBundle: { namespace: 'spire', configMap: 'spire-bundle', configMapKey: 'bundle.crt', kubeConfigFilePath: '' } },
    });
    assert.deepEqual(plugins, [
      { type: 'DataStore', name: 'sql', detail: 'sqlite3 /var/lib/ztwim/datastore.sqlite3' },
      { type: 'KeyManager', name: 'disk', detail: '/var/lib/ztwim/keys.json' },
      { type: 'NodeAttestor', name: 'join_token', detail: 'single-use join tokens' },
      { type: 'NodeAttestor', name: 'x509pop', detail: 'mode external_pki' },
      { type: 'NodeAttestor', name: 'k8s_psat', detail: 'clusters east, west' },
      { type: 'Notifier', name: 'k8sbundle', detail: 'ConfigMap spire/spire-bundle key bundle.crt' },
    ]);
  });

  it('shows PostgreSQL hosts and database, never the user or password, in both connection string forms', () => {
    const base = { keyManager: { type: 'memory' }, nodeAttestors: { joinToken: false } } as const;
    const url = configuredPlugins({
      ...base,
      dataStore: pg('postgres://spire:s3cret@db1:5433,db2/spire?target_session_attrs=read-write', 'postgres://ro:pw@replica/spire'),
    });
    assert.deepEqual(url[0], { type: 'DataStore', name: 'sql', detail: 'postgres db1:5433, db2:5432/spire; read replica replica:5432/spire' });
    const kv = configuredPlugins({ ...base, dataStore: pg('dbname=postgres user=postgres password=hunter2 host=127.0.0.1 port=5432 sslmode=disable') });
    assert.equal(kv[0]?.detail, 'postgres 127.0.0.1:5432/postgres');
    for (const p of [...url, ...kv]) assert.doesNotMatch(p.detail, /s3cret|hunter2|spire:|ro:pw|user=/);
    assert.deepEqual(kv[1], { type: 'KeyManager', name: 'memory', detail: 'keys in memory, new on every start' });
    assert.equal(kv.length, 2, 'no node attestor configured, none listed');
  });
});
