// SPIRE reads a .conf file that opens with `{` as JSON (HCL's parser does), and that is how SPIRE's
// Helm chart and Red Hat's operator write server.conf and agent.conf: plugin types as objects or
// as lists of one-key objects. The same files must pass `ztwim ... validate` where they pass
// SPIRE v1.13.0's own validate, and a broken one must fail both.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spireAgentBin, spireServerBin } from './lib/peers.ts';
import { runBinary } from './lib/spire-admin.ts';
import { runZtwim } from './lib/ztwim-cli.ts';
import { makeTmpDir } from './lib/tmp.ts';

const spireValidate = async (bin: string, config: string): Promise<{ status: number; out: string }> => {
  const r = await runBinary(bin, ['validate', '-config', config]);
  return { status: r.status, out: r.stdout + r.stderr };
};

function serverConf(dir: string, listForm: boolean): string {
  const plugin = (name: string, data: Record<string, unknown>): unknown => (listForm ? [{ [name]: { plugin_data: data } }] : { [name]: { plugin_data: data } });
  return JSON.stringify(
    {
      server: {
        bind_address: '127.0.0.1',
        bind_port: '8081',
        trust_domain: 'example.org',
        data_dir: `${dir}/data`,
        log_level: 'INFO',
        ca_key_type: 'ec-p256',
        ca_ttl: '24h',
        default_x509_svid_ttl: '1h',
      },
      plugins: {
        DataStore: plugin('sql', { database_type: 'sqlite3', connection_string: `${dir}/data/datastore.sqlite3` }),
        KeyManager: plugin('disk', { keys_path: `${dir}/data/keys.json` }),
        NodeAttestor: plugin('k8s_psat', { clusters: { test: { service_account_allow_list: ['spire:spire-agent'] } } }),
        Notifier: plugin('k8sbundle', { namespace: 'spire', config_map: 'spire-bundle' }),
      },
      health_checks: { listener_enabled: true, bind_address: '0.0.0.0', bind_port: '8080', live_path: '/live', ready_path: '/ready' },
    },
    null,
    2,
  );
}

function agentConf(dir: string, listForm: boolean): string {
  const plugins = (entries: Array<[string, Record<string, unknown>]>): unknown =>
    listForm ? entries.map(([n, d]) => ({ [n]: { plugin_data: d } })) : Object.fromEntries(entries.map(([n, d]) => [n, { plugin_data: d }]));
  return JSON.stringify(
    {
      agent: {
        data_dir: `${dir}/agent`,
        log_level: 'info',
        server_address: 'spire-server.spire',
        server_port: '443',
        socket_path: `${dir}/agent.sock`,
        trust_bundle_path: `${dir}/bundle.crt`,
        trust_domain: 'example.org',
      },
      plugins: {
        KeyManager: plugins([['memory', {}]]),
        NodeAttestor: plugins([['k8s_psat', { cluster: 'test' }]]),
        WorkloadAttestor: plugins([
          ['k8s', { skip_kubelet_verification: true, node_name_env: 'MY_NODE_NAME' }],
          ['unix', {}],
        ]),
      },
    },
    null,
    2,
  );
}

describe('JSON .conf files: ztwim validate agrees with SPIRE v1.13.0 validate', () => {
  for (const listForm of [true, false]) {
    const shape = listForm ? 'plugins as lists of one-key objects' : 'plugins as objects';
    test(`server.conf and agent.conf as JSON, ${shape}: both accept`, async () => {
      const tmp = makeTmpDir('ztwim-json-conf-');
      try {
        const server = tmp.write('server.conf', serverConf(tmp.path, listForm));
        const agent = tmp.write('agent.conf', agentConf(tmp.path, listForm));
        const s = await spireValidate(spireServerBin(), server);
        assert.equal(s.status, 0, `spire-server validate: ${s.out}`);
        const a = await spireValidate(spireAgentBin(), agent);
        assert.equal(a.status, 0, `spire-agent validate: ${a.out}`);
        const zs = await runZtwim(tmp.path, ['server', 'validate', '-config', server]);
        assert.equal(zs.status, 0, `ztwim server validate: ${zs.stdout}${zs.stderr}`);
        const za = await runZtwim(tmp.path, ['agent', 'validate', '-config', agent]);
        assert.equal(za.status, 0, `ztwim agent validate: ${za.stdout}${za.stderr}`);
      } finally {
        tmp.cleanup();
      }
    });
  }

  test('a JSON server.conf cut short: both refuse, ztwim naming the file and line', async () => {
    const tmp = makeTmpDir('ztwim-json-conf-');
    try {
      const text = serverConf(tmp.path, true);
      const file = tmp.write('server.conf', text.slice(0, text.indexOf('"plugins"')));
      const s = await spireValidate(spireServerBin(), file);
      assert.notEqual(s.status, 0, `spire-server validate accepted: ${s.out}`);
      const z = await runZtwim(tmp.path, ['server', 'validate', '-config', file]);
      assert.notEqual(z.status, 0);
      assert.match(z.stderr, /server\.conf: line \d+/);
    } finally {
      tmp.cleanup();
    }
  });
});
