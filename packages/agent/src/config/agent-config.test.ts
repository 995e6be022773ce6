import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '@ztwim/core';
import { buildAgentConfig, serverTargets } from './agent-config.ts';

const base = `agent {
  server_address = "127.0.0.1"
  trust_domain = "example.org"
  trust_bundle_path = "/b.pem"
}
`;

test('defaults applied', () => {
  const c = buildAgentConfig(parseConfigText(base, 'hcl'), 'agent.conf', {}, '/x');
  assert.equal(c.serverPort, 8081);
  assert.equal(c.dataDir, '/x/.ztwim/agent');
  assert.equal(c.socketPath, '/tmp/spire-agent/public/api.sock');
  assert.equal(c.syncIntervalMs, 5000);
  assert.deepEqual(c.nodeAttestor, { type: 'join_token' });
});

test('allow_unauthenticated_verifiers: read as a bool (unset: false, no warning), anything else refused naming the key', () => {
  const with_ = (v: string) => parseConfigText(base.replace('trust_domain', `allow_unauthenticated_verifiers = ${v}\n  trust_domain`), 'hcl');
  assert.equal(buildAgentConfig(parseConfigText(base, 'hcl'), 'agent.conf').allowUnauthenticatedVerifiers, undefined);
  const on = buildAgentConfig(with_('true'), 'agent.conf');
  assert.equal(on.allowUnauthenticatedVerifiers, true);
  assert.deepEqual(on.warnings, [], 'acted on, so not warned about as unimplemented');
  assert.equal(buildAgentConfig(with_('false'), 'agent.conf').allowUnauthenticatedVerifiers, undefined);
  assert.throws(() => buildAgentConfig(with_('"yes"'), 'agent.conf'), /agent\.allow_unauthenticated_verifiers[\s\S]*must be true or false/);
});

test('unknown key is an error naming key and line', () => {
  const doc = parseConfigText(base.replace('trust_domain', 'bogus_key = 1\n  trust_domain'), 'hcl');
  assert.throws(() => buildAgentConfig(doc, 'agent.conf'), /bogus_key[\s\S]*3|3[\s\S]*bogus_key/);
});

test('x509pop plugin and sync interval', () => {
  const doc = parseConfigText(
    `${base.replace('}\n', '  experimental { sync_interval = "2s" }\n}\n')}plugins {
  NodeAttestor "x509pop" { plugin_data { private_key_path = "/k.pem"
    certificate_path = "/c.pem" } }
}`,
    'hcl',
  );
  const c = buildAgentConfig(doc, 'agent.conf');
  assert.equal(c.syncIntervalMs, 2000);
  assert.equal(c.nodeAttestor.type, 'x509pop');
});

test('command-line overrides (spire-agent run flags) win over the file', () => {
  const doc = parseConfigText(base, 'hcl');
  const c = buildAgentConfig(
    doc,
    'agent.conf',
    {
      serverAddress: '10.0.0.1',
      serverPort: 9000,
      trustDomain: 'other.org',
      joinToken: 'T',
      dataDir: 'd',
      socketPath: 's.sock',
      logLevel: 'DEBUG',
      trustBundlePath: 'tb.pem',
    },
    '/x',
  );
  assert.equal(c.serverAddress, '10.0.0.1');
  assert.equal(c.serverPort, 9000);
  assert.equal(c.trustDomain, 'other.org');
  assert.equal(c.joinToken, 'T');
  assert.equal(c.dataDir, '/x/d');
  assert.equal(c.socketPath, '/x/s.sock');
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.trustBundlePath, '/x/tb.pem');
  const url = buildAgentConfig(parseConfigText(base.replace('  trust_bundle_path = "/b.pem"\n', ''), 'hcl'), 'agent.conf', {
    trustBundleUrl: 'https://b.example/bundle',
  });
  assert.equal(url.trustBundleUrl, 'https://b.example/bundle');
  const insecure = buildAgentConfig(parseConfigText(base.replace('  trust_bundle_path = "/b.pem"\n', ''), 'hcl'), 'agent.conf', { insecureBootstrap: true });
  assert.equal(insecure.insecureBootstrap, true);
  // -insecureBootstrap together with a trust bundle in the file is refused, as in the file alone.
  assert.throws(() => buildAgentConfig(doc, 'agent.conf', { insecureBootstrap: true }), /agent\.insecure_bootstrap/);
});

test('metrics only where telemetry asks for a Prometheus listener; log_format taken as SPIRE names it', () => {
  const plain = buildAgentConfig(parseConfigText(base, 'hcl'), 'agent.conf', {}, '/x');
  assert.equal(plain.metrics, undefined);
  assert.equal(plain.logFormat, undefined);
  const withProm = buildAgentConfig(
    parseConfigText(`${base.replace('}\n', '  log_format = "TEXT"\n}\n')}telemetry {\n  Prometheus {\n    port = 9988\n  }\n}\n`, 'hcl'),
    'agent.conf',
    {},
    '/x',
  );
  assert.deepEqual(withProm.metrics, { host: 'localhost', port: 9988 });
  assert.equal(withProm.logFormat, 'text');
  const disabled = buildAgentConfig(
    parseConfigText(`${base}telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = 9988\n  }\n  disabled = true\n}\n`, 'hcl'),
    'agent.conf',
    {},
    '/x',
  );
  assert.equal(disabled.metrics, undefined);
  assert.throws(
    () => buildAgentConfig(parseConfigText(`${base}telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n  }\n}\n`, 'hcl'), 'agent.conf'),
    /telemetry\.Prometheus\.port[\s\S]*is required/,
  );
  assert.throws(() => buildAgentConfig(parseConfigText(base.replace('}\n', '  log_format = "xml"\n}\n'), 'hcl'), 'agent.conf'), /log_format[\s\S]*"xml"/);
});

test('SPIRE agent keys ztwim does not implement are accepted and warned about by name (log_file, sds, ...); health_checks is read', () => {
  const src = `agent {
  server_address = "127.0.0.1"
  trust_domain = "example.org"
  insecure_bootstrap = true
  log_file = "/var/log/agent.log"
  admin_socket_path = "/tmp/spire-agent/private/admin.sock"
  sds {
    default_svid_name = "default"
  }
}
telemetry {
  Prometheus {
    port = 9988
  }
}
health_checks {
  listener_enabled = true
}
`;
  const c = buildAgentConfig(parseConfigText(src, 'hcl'), 'agent.conf', {}, '/x');
  assert.deepEqual(c.warnings, [
    'agent.log_file is not implemented yet; logs go to standard error (agent.conf line 5)',
    "agent.admin_socket_path is not implemented yet; no agent admin API (SPIRE's debug and delegated identity APIs) is served (agent.conf line 6)",
    'agent.sds is not implemented yet; no Envoy SDS API is served (agent.conf line 7)',
  ]);
  assert.deepEqual(c.healthChecks, { bindAddress: 'localhost', bindPort: 80, livePath: '/live', readyPath: '/ready' });
  assert.deepEqual(buildAgentConfig(parseConfigText(base, 'hcl'), 'agent.conf', {}, '/x').warnings, []);
});

test('WorkloadAttestor "k8s": every SPIRE plugin_data key, paths resolved against the base dir', () => {
  const src = `${base}plugins {
  WorkloadAttestor "unix" { plugin_data {} }
  WorkloadAttestor "k8s" {
    plugin_data {
      kubelet_secure_port = 10250
      max_poll_attempts = 5
      poll_retry_interval = "1s"
      kubelet_ca_path = "pki/kubelet-ca.crt"
      skip_kubelet_verification = false
      token_path = "/var/run/secrets/tokens/agent"
      certificate_path = ""
      private_key_path = ""
      use_anonymous_authentication = false
      node_name_env = "NODE"
      node_name = "node-1"
      reload_interval = "30s"
      disable_container_selectors = true
      use_new_container_locator = true
      verbose_container_locator_logs = true
    }
  }
}
`;
  const c = buildAgentConfig(parseConfigText(src, 'hcl'), 'agent.conf', {}, '/x');
  assert.deepEqual(c.k8sAttestor, {
    securePort: 10250,
    maxPollAttempts: 5,
    pollRetryIntervalMs: 1000,
    kubeletCaPath: '/x/pki/kubelet-ca.crt',
    skipKubeletVerification: false,
    tokenPath: '/var/run/secrets/tokens/agent',
    certificatePath: '',
    privateKeyPath: '',
    useAnonymousAuthentication: false,
    nodeNameEnv: 'NODE',
    nodeName: 'node-1',
    reloadIntervalMs: 30_000,
    disableContainerSelectors: true,
    useNewContainerLocator: true,
    verboseContainerLocatorLogs: true,
  });
  assert.deepEqual(c.warnings, []);
  assert.equal(buildAgentConfig(parseConfigText(base, 'hcl'), 'agent.conf').k8sAttestor, undefined);
  const empty = buildAgentConfig(parseConfigText(`${base}plugins { WorkloadAttestor "k8s" { } }\n`, 'hcl'), 'agent.conf');
  assert.deepEqual(empty.k8sAttestor, {});
});

test('WorkloadAttestor "k8s": unknown keys and sigstore warned by name, bad values refused', () => {
  const warned = buildAgentConfig(
    parseConfigText(
      `${base}plugins {
  WorkloadAttestor "k8s" {
    plugin_data {
      kubelet_read_only_port = 10255
      kubelet_secure_prot = 10250
      experimental { sigstore { } }
    }
  }
}
`,
      'hcl',
    ),
    'agent.conf',
  );
  assert.deepEqual(warned.k8sAttestor, { readOnlyPort: 10255 });
  assert.deepEqual(warned.warnings, [
    'plugins.WorkloadAttestor.k8s.plugin_data.experimental is not implemented yet; sigstore image signature verification is not done; no sigstore selectors (agent.conf line 11)',
    'plugins.WorkloadAttestor.k8s.plugin_data.kubelet_secure_prot is not a k8s workload attestor key; ignored (agent.conf line 10)',
  ]);
  const bad =
    (pd: string): (() => unknown) =>
    () =>
      buildAgentConfig(parseConfigText(`${base}plugins { WorkloadAttestor "k8s" { plugin_data { ${pd} } } }\n`, 'hcl'), 'agent.conf');
  assert.throws(bad('kubelet_read_only_port = 10255\nkubelet_secure_port = 10250'), /kubelet_read_only_port.*cannot be set together with kubelet_secure_port/);
  assert.throws(bad('poll_retry_interval = "soon"'), /poll_retry_interval/);
  assert.throws(bad('reload_interval = "0s"'), /reload_interval.*must be positive/);
  assert.throws(bad('certificate_path = "/c.pem"'), /private_key_path.*is required with certificate_path/);
  assert.throws(bad('max_poll_attempts = "many"'), /max_poll_attempts/);
});

test("k8s_psat plugin: cluster and token_path (SPIRE's default path when unset, relative paths from the config dir)", () => {
  const conf = (pd: string): string => `${base}plugins {\n  NodeAttestor "k8s_psat" { plugin_data { ${pd} } }\n}`;
  const set = buildAgentConfig(parseConfigText(conf('cluster = "test"\n token_path = "tok/agent"'), 'hcl'), 'agent.conf', {}, '/etc/ztwim');
  assert.deepEqual(set.nodeAttestor, { type: 'k8s_psat', cluster: 'test', tokenPath: '/etc/ztwim/tok/agent' });
  const dflt = buildAgentConfig(parseConfigText(conf('cluster = "test"'), 'hcl'), 'agent.conf', {}, '/x');
  assert.deepEqual(dflt.nodeAttestor, { type: 'k8s_psat', cluster: 'test', tokenPath: '/var/run/secrets/tokens/spire-agent' });
  assert.throws(
    () => buildAgentConfig(parseConfigText(conf('token_path = "/t"'), 'hcl'), 'agent.conf'),
    /plugins\.NodeAttestor\.k8s_psat\.plugin_data\.cluster \(line \d+\): is required \(missing required cluster block\)/,
  );
  assert.throws(
    () => buildAgentConfig(parseConfigText(conf('cluster = "t"\n tokenpath = "/t"'), 'hcl'), 'agent.conf'),
    /plugin_data\.tokenpath \(line \d+\): unknown key/,
  );
});

test('server_address (SPIRE): one DNS name or IP with server_port; serverTargets gives that one target', () => {
  const c = buildAgentConfig(parseConfigText(base.replace('"127.0.0.1"', '"spire-server.example.svc"\n  server_port = 8443'), 'hcl'), 'agent.conf');
  assert.equal(c.serverAddresses, undefined);
  assert.deepEqual(serverTargets(c), [{ host: 'spire-server.example.svc', port: 8443 }]);
});

test('server_addresses: host, host:port, [v6]:port and bare IPv6 items, the port defaulting to server_port', () => {
  const conf = base.replace(
    'server_address = "127.0.0.1"',
    'server_addresses = ["127.0.0.1", "127.0.0.2:9001", "servers.test", "[::1]:9002", "::2"]\n  server_port = 9000',
  );
  const c = buildAgentConfig(parseConfigText(conf, 'hcl'), 'agent.conf');
  assert.deepEqual(serverTargets(c), [
    { host: '127.0.0.1', port: 9000 },
    { host: '127.0.0.2', port: 9001 },
    { host: 'servers.test', port: 9000 },
    { host: '::1', port: 9002 },
    { host: '::2', port: 9000 },
  ]);
  assert.equal(c.serverAddress, '127.0.0.1', 'the first, for what reads one address');
  // The -serverAddress flag names one server, whatever the file lists.
  const flagged = buildAgentConfig(parseConfigText(conf, 'hcl'), 'agent.conf', { serverAddress: '10.0.0.9' });
  assert.deepEqual(serverTargets(flagged), [{ host: '10.0.0.9', port: 9000 }]);
});

test('bad server addresses are errors naming the key and the value', () => {
  const cases: { name: string; agent: string; want: RegExp }[] = [
    { name: 'neither key', agent: '', want: /agent\.server_address.*is required \(or server_addresses\)/ },
    {
      name: 'both keys',
      agent: 'server_address = "a"\n  server_addresses = ["b"]',
      want: /agent\.server_addresses.*cannot be set together with server_address/,
    },
    {
      name: 'several in server_address',
      agent: 'server_address = "a,b"',
      want: /server_address.*"a,b" holds several addresses; list them in server_addresses/,
    },
    { name: 'a URL', agent: 'server_address = "dns:///a:8081"', want: /server_address.*has a URL scheme/ },
    { name: 'not a host name', agent: 'server_address = "a b"', want: /server_address.*contains whitespace/ },
    { name: 'empty list', agent: 'server_addresses = []', want: /server_addresses.*lists no server/ },
    { name: 'bad port', agent: 'server_addresses = ["a:99999"]', want: /server_addresses.*"a:99999" has port "99999", not 1-65535/ },
    { name: 'no host', agent: 'server_addresses = [":8081"]', want: /server_addresses.*":8081" has no host/ },
    { name: 'unclosed bracket', agent: 'server_addresses = ["[::1"]', want: /server_addresses.*has no closing \]/ },
    { name: 'not a list of strings', agent: 'server_addresses = [1]', want: /server_addresses.*must be a list of strings/ },
    { name: 'bad host in the list', agent: 'server_addresses = ["a_b-.x!"]', want: /server_addresses.*"a_b-\.x!" is not a DNS name or an IP address/ },
  ];
  for (const c of cases) {
    const conf = base.replace('server_address = "127.0.0.1"', c.agent);
    assert.throws(() => buildAgentConfig(parseConfigText(conf, 'hcl'), 'agent.conf'), c.want, c.name);
  }
  assert.throws(() => buildAgentConfig(parseConfigText(base, 'hcl'), 'agent.conf', { serverAddress: 'a,b' }), /serverAddress.*holds several addresses/);
});

test('server_keepalive_interval / server_keepalive_timeout / server_rebalance_interval: durations, unset by default, bad values named', () => {
  const with_ = (lines: string) => parseConfigText(base.replace('trust_domain', `${lines}\n  trust_domain`), 'hcl');
  const d = buildAgentConfig(parseConfigText(base, 'hcl'), 'agent.conf');
  assert.equal(d.serverKeepalive, undefined, 'unset: the agent uses DEFAULT_SERVER_KEEPALIVE');
  assert.equal(d.serverRebalanceIntervalMs, undefined);
  const c = buildAgentConfig(
    with_('server_keepalive_interval = "2s"\n  server_keepalive_timeout = "500ms"\n  server_rebalance_interval = "30s"'),
    'agent.conf',
  );
  assert.deepEqual(c.serverKeepalive, { intervalMs: 2000, timeoutMs: 500 });
  assert.equal(c.serverRebalanceIntervalMs, 30_000);
  assert.deepEqual(c.warnings, []);
  assert.deepEqual(buildAgentConfig(with_('server_keepalive_timeout = "1s"'), 'agent.conf').serverKeepalive, { intervalMs: 10_000, timeoutMs: 1000 });
  assert.equal(buildAgentConfig(with_('server_rebalance_interval = "0s"'), 'agent.conf').serverRebalanceIntervalMs, 0, '0 turns it off');
  assert.throws(() => buildAgentConfig(with_('server_keepalive_interval = "10ms"'), 'agent.conf'), /agent\.server_keepalive_interval[\s\S]*at least 1s/);
  assert.throws(() => buildAgentConfig(with_('server_keepalive_timeout = "1ms"'), 'agent.conf'), /agent\.server_keepalive_timeout[\s\S]*at least 100ms/);
  assert.throws(() => buildAgentConfig(with_('server_rebalance_interval = "soon"'), 'agent.conf'), /agent\.server_rebalance_interval/);
});
