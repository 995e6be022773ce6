import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isZtwimError, parseConfigText } from '@ztwim/core';
import { buildServerConfig } from './server-config.ts';

const FULL = `
server {
  bind_address = "127.0.0.1"
  bind_port = "8081"
  socket_path = "/tmp/ztwim-test/api.sock"
  trust_domain = "example.org"
  data_dir = "/var/lib/ztwim"
  log_level = "DEBUG"
  ca_subject {
    country = ["DE"]
    organization = ["Acme"]
    common_name = "acme-ca"
  }
  ca_key_type = "rsa-2048"
  jwt_key_type = "ec-p384"
  ca_ttl = "48h"
  default_x509_svid_ttl = "2h"
  default_jwt_svid_ttl = "10m"
  jwt_issuer = "https://oidc.example.org"
  admin_ids = ["spiffe://example.org/admin"]
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "postgres"
      connection_string = "postgres://u:p@127.0.0.1/db"
      max_open_conns = 10
      max_idle_conns = 5
      conn_max_lifetime = "30s"
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  NodeAttestor "x509pop" {
    plugin_data {
      ca_bundle_path = "/etc/ca.pem"
    }
  }
}
telemetry {
  Prometheus {
    port = 9999
  }
}
`;

test('a full SPIRE-style server.conf becomes runtime config', () => {
  const c = buildServerConfig(parseConfigText(FULL, 'hcl'), 'server.conf');
  assert.equal(c.trustDomain.name, 'example.org');
  assert.equal(c.bindAddress, '127.0.0.1');
  assert.equal(c.bindPort, 8081);
  assert.equal(c.logLevel, 'debug');
  assert.deepEqual(c.caSubject, { country: ['DE'], organization: ['Acme'], commonName: 'acme-ca' });
  assert.equal(c.caKeyType, 'rsa-2048');
  assert.equal(c.jwtKeyType, 'ec-p384');
  assert.equal(c.caTtlMs, 48 * 3600_000);
  assert.equal(c.x509SvidTtlMs, 2 * 3600_000);
  assert.equal(c.agentTtlMs, 2 * 3600_000);
  assert.equal(c.jwtSvidTtlMs, 600_000);
  assert.equal(c.jwtIssuer, 'https://oidc.example.org');
  assert.deepEqual(c.adminIds.map(String), ['spiffe://example.org/admin']);
  assert.deepEqual(c.dataStore, {
    type: 'postgres',
    connectionString: 'postgres://u:p@127.0.0.1/db',
    maxOpenConns: 10,
    maxIdleConns: 5,
    connMaxLifetimeMs: 30_000,
  });
  assert.deepEqual(c.keyManager, { type: 'memory' });
  assert.equal(c.nodeAttestors.joinToken, true);
  assert.deepEqual(c.nodeAttestors.x509pop?.caBundlePaths, ['/etc/ca.pem']);
  assert.deepEqual(c.metrics, { host: 'localhost', port: 9999 }, "SPIRE's default host");
  assert.ok(Object.isFrozen(c));
});

test('defaults follow SPIRE and the SpireServer resource', () => {
  const c = buildServerConfig(parseConfigText('server { trust_domain = "td" }', 'hcl'), 'x', {}, '/base');
  assert.equal(c.caTtlMs, 24 * 3600_000);
  assert.equal(c.x509SvidTtlMs, 3600_000);
  assert.equal(c.jwtSvidTtlMs, 300_000);
  assert.equal(c.caKeyType, 'ec-p256');
  assert.equal(c.jwtKeyType, 'ec-p256');
  assert.equal(c.socketPath, '/tmp/spire-server/private/api.sock');
  assert.equal(c.bindPort, 8081);
  assert.deepEqual(c.dataStore, { type: 'sqlite3', path: '/base/.ztwim/server/datastore.sqlite3' });
  assert.deepEqual(c.keyManager, { type: 'disk', path: '/base/.ztwim/server/keys.json' });
});

test('flags override the file', () => {
  const c = buildServerConfig(parseConfigText('server { trust_domain = "td"\n bind_port = 1 }', 'hcl'), 'x', { bindPort: 2, trustDomain: 'other.org' });
  assert.equal(c.bindPort, 2);
  assert.equal(c.trustDomain.name, 'other.org');
});

test('bad configs report every problem with key and line', () => {
  const src =
    'server {\n  trust_domain = "Bad Domain"\n  ca_ttl = "forever"\n  jwt_issuer = "oidc.example.org"\n  colour = "blue"\n  ca_key_type = "dsa"\n}\nplugins {\n  DataStore "mongo" {\n  }\n}\n';
  assert.throws(
    () => buildServerConfig(parseConfigText(src, 'hcl'), 'server.conf'),
    (e: unknown) => {
      if (!isZtwimError(e, 'ERR_CONFIG')) return false;
      const m = e.message;
      return (
        m.includes('server.trust_domain (line 2): trustdomain: trust domain characters are limited') &&
        m.includes('server.ca_ttl (line 3): must be a duration') &&
        m.includes('server.jwt_issuer (line 4): must be an http(s) URL') &&
        m.includes('server.colour (line 5): unknown key') &&
        m.includes('server.ca_key_type (line 6): must be one of') &&
        m.includes('plugins.DataStore.mongo (line 9): unknown DataStore plugin')
      );
    },
  );
  assert.throws(() => buildServerConfig(parseConfigText('server {}', 'hcl'), 'x'), /server.trust_domain .*is required/);
});

const build = (src: string) => buildServerConfig(parseConfigText(src, 'hcl'), 'server.conf', {}, '/base');

test('metrics only where telemetry asks, as SPIRE: none without a Prometheus block, SPIRE\'s host "localhost" when only the port is set', () => {
  assert.equal(build('server { trust_domain = "td" }').metrics, undefined, 'no telemetry block: no listener');
  assert.equal(build('server { trust_domain = "td" }\ntelemetry {}').metrics, undefined, 'telemetry without Prometheus: no listener');
  assert.deepEqual(build('server { trust_domain = "td" }\ntelemetry {\n  Prometheus {\n    port = 9988\n  }\n}').metrics, { host: 'localhost', port: 9988 });
  assert.deepEqual(build('server { trust_domain = "td" }\ntelemetry {\n  Prometheus {\n    host = "127.0.0.2"\n    port = 9988\n  }\n}').metrics, {
    host: '127.0.0.2',
    port: 9988,
  });
  assert.deepEqual(
    build('server { trust_domain = "td" }\ntelemetry {\n  Prometheus {}\n}').metrics,
    { host: 'localhost', port: 0 },
    "SPIRE's port 0: any free port",
  );
});

test("default_svid_ttl, SPIRE's old name of the X.509 SVID TTL: used alone with SPIRE's deprecation warning; default_x509_svid_ttl wins when both are set", () => {
  const old = build('server {\n  trust_domain = "td"\n  default_svid_ttl = "2h"\n}');
  assert.equal(old.x509SvidTtlMs, 2 * 3600_000);
  assert.equal(old.agentTtlMs, 2 * 3600_000);
  assert.deepEqual(old.warnings, [
    'server.default_svid_ttl is deprecated; consider using default_x509_svid_ttl and default_jwt_svid_ttl instead (server.conf line 3)',
  ]);
  const both = build('server {\n  trust_domain = "td"\n  default_svid_ttl = "2h"\n  default_x509_svid_ttl = "30m"\n}');
  assert.equal(both.x509SvidTtlMs, 30 * 60_000);
  assert.deepEqual(both.warnings, [
    'server.default_svid_ttl is ignored: both default_x509_svid_ttl and default_svid_ttl are configured; default_x509_svid_ttl (30m) will be used for X509-SVIDs (server.conf line 3)',
  ]);
  assert.deepEqual(build('server { trust_domain = "td" }').warnings, []);
});

test("audit_log_enabled is read (SPIRE's audit log); off by default", () => {
  assert.equal(build('server {\n  trust_domain = "td"\n  audit_log_enabled = true\n}').auditLog, true);
  assert.equal(build('server { trust_domain = "td" }').auditLog, false);
});

test('SPIRE keys ztwim does not implement are accepted and warned about by name, with what the user will not get', () => {
  const c = build(`server {
  trust_domain = "td"
  federation {
    bundle_endpoint {
      address = "0.0.0.0"
      port = 8443
    }
  }
  ratelimit {
    attestation = true
  }
  experimental {
    cache_reload_interval = "5s"
  }
  log_file = "/var/log/spire.log"
  prune_attested_nodes_expired_for = "24h"
}
telemetry {
  Prometheus {
    port = 9988
  }
  DogStatsd = [{ address = "localhost:8125" }]
}
`);
  assert.deepEqual(c.warnings, [
    'server.log_file is not implemented yet; logs go to standard error (server.conf line 15)',
    'server.experimental is not implemented yet; its settings have no effect (server.conf line 12)',
    'server.prune_attested_nodes_expired_for is not implemented yet; expired agents are not pruned (server.conf line 16)',
    'telemetry.DogStatsd is not implemented yet; no metrics are sent to DogStatsd (only Prometheus is served) (server.conf line 22)',
  ]);
});

test('federation: the bundle endpoint and federates_with relationships, as SPIRE writes them', () => {
  const c = build(`server {
  trust_domain = "a.test"
  federation {
    bundle_endpoint {
      address = "127.0.0.1"
      port = 8443
      refresh_hint = "2m"
      profile "https_spiffe" {}
    }
    federates_with "b.test" {
      bundle_endpoint_url = "https://127.0.0.1:9443"
      bundle_endpoint_profile "https_spiffe" {
        endpoint_spiffe_id = "spiffe://b.test/spire/server"
      }
    }
    federates_with "web.test" {
      bundle_endpoint_url = "https://web.test/bundle"
      bundle_endpoint_profile "https_web" {}
    }
  }
}`);
  assert.deepEqual(c.federation, {
    bundleEndpoint: { address: '127.0.0.1', port: 8443, refreshHintSeconds: 120, profile: { kind: 'https_spiffe' } },
    federatesWith: [
      {
        trustDomain: 'b.test',
        bundleEndpointUrl: 'https://127.0.0.1:9443',
        bundleEndpointProfile: 'https_spiffe',
        endpointSpiffeId: 'spiffe://b.test/spire/server',
      },
      { trustDomain: 'web.test', bundleEndpointUrl: 'https://web.test/bundle', bundleEndpointProfile: 'https_web', endpointSpiffeId: '' },
    ],
  });
  assert.throws(
    () => build('server {\n  trust_domain = "a.test"\n  federation {\n    federates_with "b.test" {\n      bundle_endpoint_url = "http://x"\n    }\n  }\n}'),
    /bundle_endpoint_url \(line 5\): must be an https URL[\s\S]*exactly one of "https_spiffe" or "https_web" is required/,
  );
});

test("federation: https_web with acme (SPIRE's keys; cache in <data_dir>/bundle-acme) or serving_cert_file, not both", () => {
  const web = (inner: string): string => `server {
  trust_domain = "a.test"
  data_dir = "/srv/spire"
  federation {
    bundle_endpoint {
      port = 8443
      profile "https_web" {
${inner}
      }
    }
  }
}`;
  const c = build(
    web('        acme {\n          domain_name = "fed.example.org"\n          email = "ops@example.org"\n          tos_accepted = true\n        }'),
  );
  assert.deepEqual(c.federation?.bundleEndpoint?.profile, {
    kind: 'https_web',
    acme: {
      domainName: 'fed.example.org',
      email: 'ops@example.org',
      directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory',
      tosAccepted: true,
      cacheDir: '/srv/spire/bundle-acme',
    },
  });
  assert.deepEqual(c.warnings, []);
  // tos_accepted unset: SPIRE starts and warns (the CA then refuses the account).
  const noTos = build(
    web(
      '        acme {\n          domain_name = "fed.example.org"\n          email = "ops@example.org"\n          directory_url = "https://acme.test/dir"\n        }',
    ),
  );
  assert.equal(noTos.federation?.bundleEndpoint?.profile.kind, 'https_web');
  assert.match((noTos.warnings ?? []).join('\n'), /acme\.tos_accepted ACME Terms of Service have not been accepted/);
  assert.throws(
    () => build(web('        acme {\n          tos_accepted = true\n        }')),
    /acme\.domain_name \(line 7\): must be configured[\s\S]*acme\.email \(line 7\): must be configured/,
  );
  assert.throws(
    () => build(web('        acme {\n          domain_name = "x.org"\n          email = "a@b.c"\n          directory_url = "http://acme.test/dir"\n        }')),
    /acme\.directory_url \(line 11\): must be an https URL, got "http:\/\/acme.test\/dir"/,
  );
  assert.throws(
    () =>
      build(
        web(
          '        acme {\n          domain_name = "x.org"\n          email = "a@b.c"\n        }\n        serving_cert_file {\n          cert_file_path = "c"\n          key_file_path = "k"\n        }',
        ),
      ),
    /profile\.https_web \(line 7\): acme and serving_cert_file are mutually exclusive/,
  );
  assert.throws(() => build(web('')), /profile\.https_web \(line 7\): needs acme or serving_cert_file/);
  // SPIRE's older form, directly in bundle_endpoint: read, with a warning; never beside a profile.
  const old = build(
    'server {\n  trust_domain = "a.test"\n  data_dir = "/d"\n  federation {\n    bundle_endpoint {\n      acme {\n        domain_name = "x.org"\n        email = "a@b.c"\n        tos_accepted = true\n      }\n    }\n  }\n}',
  );
  assert.deepEqual(old.federation?.bundleEndpoint?.profile, {
    kind: 'https_web',
    acme: {
      domainName: 'x.org',
      email: 'a@b.c',
      directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory',
      tosAccepted: true,
      cacheDir: '/d/bundle-acme',
    },
  });
  assert.match((old.warnings ?? []).join('\n'), /bundle_endpoint\.acme within the bundle_endpoint is deprecated/);
  assert.throws(
    () =>
      build(
        'server {\n  trust_domain = "a.test"\n  federation {\n    bundle_endpoint {\n      profile "https_spiffe" {}\n      acme {\n        domain_name = "x.org"\n        email = "a@b.c"\n      }\n    }\n  }\n}',
      ),
    /bundle_endpoint\.acme \(line 6\): either bundle endpoint 'acme' or 'profile' can be set, but not both/,
  );
});

test('k8s_psat: SPIRE\'s clusters map, with its defaults (audience ["spire-server"], in-cluster config)', () => {
  const c = buildServerConfig(
    parseConfigText(
      `
server { trust_domain = "example.org" }
plugins {
  NodeAttestor "k8s_psat" {
    plugin_data {
      clusters = {
        "prod" = {
          service_account_allow_list = ["spire:spire-agent", "spire:other"]
          audience = ["a", "b"]
          kube_config_file = "kube/prod.yaml"
          allowed_node_label_keys = ["zone"]
          allowed_pod_label_keys = ["app"]
        }
        "edge" = {
          service_account_allow_list = ["spire:spire-agent"]
        }
        "any-aud" = {
          service_account_allow_list = ["spire:spire-agent"]
          audience = []
        }
      }
    }
  }
}`,
      'hcl',
    ),
    'server.conf',
    {},
    '/etc/ztwim',
  );
  assert.deepEqual(c.nodeAttestors.k8sPsat, {
    clusters: [
      {
        name: 'prod',
        serviceAccountAllowList: ['spire:spire-agent', 'spire:other'],
        audience: ['a', 'b'],
        kubeConfigFile: '/etc/ztwim/kube/prod.yaml',
        allowedNodeLabelKeys: ['zone'],
        allowedPodLabelKeys: ['app'],
      },
      {
        name: 'edge',
        serviceAccountAllowList: ['spire:spire-agent'],
        audience: ['spire-server'],
        kubeConfigFile: '',
        allowedNodeLabelKeys: [],
        allowedPodLabelKeys: [],
      },
      { name: 'any-aud', serviceAccountAllowList: ['spire:spire-agent'], audience: [], kubeConfigFile: '', allowedNodeLabelKeys: [], allowedPodLabelKeys: [] },
    ],
  });
  assert.equal(c.nodeAttestors.joinToken, false);
});

test('k8s_psat: the JSON form and the HCL block form of clusters read alike', () => {
  const json = buildServerConfig(
    parseConfigText(
      JSON.stringify({
        server: { trust_domain: 'example.org' },
        plugins: { NodeAttestor: { k8s_psat: { plugin_data: { clusters: { test: { service_account_allow_list: ['ns:sa'] } } } } } },
      }),
      'json',
    ),
    'server.json',
  );
  const block = buildServerConfig(
    parseConfigText(
      'server { trust_domain = "example.org" }\nplugins { NodeAttestor "k8s_psat" { plugin_data { clusters "test" { service_account_allow_list = ["ns:sa"] } } } }',
      'hcl',
    ),
    'server.conf',
  );
  for (const c of [json, block])
    assert.deepEqual(
      c.nodeAttestors.k8sPsat?.clusters.map((x) => [x.name, x.serviceAccountAllowList]),
      [['test', ['ns:sa']]],
    );
});

test('k8s_psat: bad clusters are refused naming the key; no clusters is a warning (SPIRE: attestation effectively disabled)', () => {
  const bad = `
server { trust_domain = "example.org" }
plugins {
  NodeAttestor "k8s_psat" {
    plugin_data {
      clusters = {
        "a" = { audience = ["x"] }
        "b" = { service_account_allow_list = ["just-a-name"], kube_config_file = 7 }
        "c" = { service_account_allow_list = ["ns:sa"], allow_list = ["typo"] }
      }
    }
  }
}`;
  assert.throws(
    () => buildServerConfig(parseConfigText(bad, 'hcl'), 'server.conf'),
    (e: unknown) => {
      assert.ok(isZtwimError(e, 'ERR_CONFIG'));
      const p = e.fields['problems'] as string[];
      const has = (re: RegExp): boolean => p.some((x) => re.test(x));
      assert.ok(
        has(
          /plugins\.NodeAttestor\.k8s_psat\.plugin_data\.clusters\.a\.service_account_allow_list \(line \d+\): cluster "a" configuration must have at least one service account allowed/,
        ),
        p.join('\n'),
      );
      assert.ok(has(/clusters\.b\.service_account_allow_list \(line \d+\): "just-a-name" must be "<namespace>:<service account>"/), p.join('\n'));
      assert.ok(has(/clusters\.b\.kube_config_file \(line \d+\): must be a string/), p.join('\n'));
      assert.ok(has(/clusters\.c\.allow_list \(line \d+\): unknown key/), p.join('\n'));
      assert.equal(p.length, 4, p.join('\n'));
      return true;
    },
  );
  const none = buildServerConfig(
    parseConfigText('server { trust_domain = "example.org" }\nplugins { NodeAttestor "k8s_psat" { plugin_data { } } }', 'hcl'),
    'server.conf',
  );
  assert.deepEqual(none.nodeAttestors.k8sPsat, { clusters: [] });
  assert.ok(
    none.warnings?.some((w) => w.includes('plugins.NodeAttestor.k8s_psat.plugin_data.clusters lists no cluster: k8s_psat attestation is effectively disabled')),
    String(none.warnings),
  );
});

test("ratelimit is read with SPIRE's defaults: attestation and signing limited unless turned off; unknown keys refused", () => {
  assert.deepEqual(build('server { trust_domain = "td" }').rateLimit, { attestation: true, signing: true });
  assert.deepEqual(build('server {\n  trust_domain = "td"\n  ratelimit {\n    signing = false\n  }\n}').rateLimit, { attestation: true, signing: false });
  assert.deepEqual(build('server {\n  trust_domain = "td"\n  ratelimit {\n    attestation = false\n    signing = true\n  }\n}').rateLimit, {
    attestation: false,
    signing: true,
  });
  assert.throws(() => build('server {\n  trust_domain = "td"\n  ratelimit {\n    signin = false\n  }\n}'), /ratelimit\.signin/);
  assert.throws(() => build('server {\n  trust_domain = "td"\n  ratelimit {\n    signing = "no"\n  }\n}'), /ratelimit\.signing/);
});

test("ro_connection_string (SPIRE's read replica) is read and checked as connection_string; several hosts with target_session_attrs too", () => {
  const pg = (lines: string) =>
    build(`server { trust_domain = "td" }\nplugins {\n  DataStore "sql" {\n    plugin_data {\n      database_type = "postgres"\n${lines}\n    }\n  }\n}`);
  const c = pg(
    '      connection_string = "host=10.0.0.1,10.0.0.2 port=5432 dbname=spire target_session_attrs=read-write"\n      ro_connection_string = "postgresql://10.0.0.3:5432,10.0.0.4:5433/spire?target_session_attrs=prefer-standby"',
  );
  assert.deepEqual(c.dataStore, {
    type: 'postgres',
    connectionString: 'host=10.0.0.1,10.0.0.2 port=5432 dbname=spire target_session_attrs=read-write',
    roConnectionString: 'postgresql://10.0.0.3:5432,10.0.0.4:5433/spire?target_session_attrs=prefer-standby',
    maxOpenConns: 100,
    maxIdleConns: 2,
    connMaxLifetimeMs: 0,
  });
  assert.deepEqual(c.warnings, []);
  assert.throws(
    () => pg('      connection_string = "postgres://db/spire"\n      ro_connection_string = "host=a,b target_session_attrs=master"'),
    /plugins\.DataStore\.sql\.plugin_data\.ro_connection_string \(line 7\): invalid target_session_attrs value: "master"/,
  );
  assert.throws(
    () => pg('      connection_string = "host=a,b,c port=1,2"'),
    /plugins\.DataStore\.sql\.plugin_data\.connection_string \(line 6\): could not match 2 port numbers \(port\) to 3 hosts \(host\)/,
  );
  const lite = build('server { trust_domain = "td" }\nplugins {\n  DataStore "sql" {\n    plugin_data {\n      ro_connection_string = "x.db"\n    }\n  }\n}');
  assert.equal(lite.dataStore.type, 'sqlite3');
  assert.match(
    (lite.warnings ?? []).join('\n'),
    /plugins\.DataStore\.sql\.plugin_data\.ro_connection_string .*is used with postgres only; ignored for sqlite3/,
  );
});
