import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZtwimError, parseConfigText } from '@ztwim/core';
import { expandEnv } from '@ztwim/core';
import { buildOidcFileConfig, loadOidcConfigFile, unixSocketPathOf, type OidcFileConfig } from './config-file.ts';
import { validateOidcConfig } from './config.ts';

const BASE = '/srv/oidc';

function build(hcl: string): OidcFileConfig {
  return buildOidcFileConfig(parseConfigText(hcl, 'hcl', 'oidc.conf'), 'oidc.conf', BASE);
}

/** The problems of a config that must be refused. */
function problemsOf(hcl: string): string[] {
  try {
    build(hcl);
  } catch (e) {
    assert.ok(isZtwimError(e, 'ERR_CONFIG'), `expected ERR_CONFIG, got ${String(e)}`);
    return [...((e.fields.problems as string[] | undefined) ?? [e.message])];
  }
  assert.fail('config was accepted');
}

function hasProblem(list: readonly string[], re: RegExp): void {
  assert.ok(
    list.some((m) => re.test(m)),
    `no problem matching ${re}:\n${list.join('\n')}`,
  );
}

const MINIMAL = `
domains = ["oidc.example.org"]
insecure_addr = ":8080"
workload_api {
  socket_path = "/tmp/spire-agent/public/api.sock"
  trust_domain = "example.org"
}
`;

describe('oidc-discovery-provider.conf', () => {
  test('minimal workload_api config: defaults as SPIRE', () => {
    const c = build(MINIMAL);
    assert.deepEqual(c.oidc, { domains: ['oidc.example.org'], insecureAddr: ':8080' });
    assert.deepEqual(c.keySource, { kind: 'workload_api', socketPath: '/tmp/spire-agent/public/api.sock', trustDomain: 'example.org', pollIntervalMs: 10_000 });
    assert.equal(c.logLevel, 'info');
    assert.equal(c.logFormat, 'text');
    assert.equal(c.logPath, undefined);
    assert.equal(c.logRequests, false);
    // and the provider accepts what the file produced
    assert.equal(validateOidcConfig(c.oidc).listener.kind, 'insecure');
  });

  test('every top-level key maps to its OidcConfig member', () => {
    const c = build(`
log_level = "DEBUG"
log_format = "json"
log_path = "logs/oidc.log"
log_requests = true
domains = ["a.example.org", "b.example.org"]
jwt_issuer = "http://a.example.org/tenant"
jwks_uri = "http://a.example.org/tenant/jwks"
server_path_prefix = "/tenant"
set_key_use = true
allow_insecure_scheme = true
listen_socket_path = "run/oidc.sock"
health_checks {
  bind_port = 9008
  ready_path = "/r"
  live_path = "/l"
}
server_api {
  address = "unix:///tmp/spire-server/private/api.sock"
  poll_interval = "1m30s"
}
`);
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.logFormat, 'json');
    assert.equal(c.logPath, '/srv/oidc/logs/oidc.log');
    assert.equal(c.logRequests, true);
    assert.deepEqual(c.oidc, {
      domains: ['a.example.org', 'b.example.org'],
      jwtIssuer: 'http://a.example.org/tenant',
      jwksUri: 'http://a.example.org/tenant/jwks',
      serverPathPrefix: '/tenant',
      setKeyUse: true,
      allowInsecureScheme: true,
      listenSocketPath: '/srv/oidc/run/oidc.sock',
      healthChecks: { addr: ':9008', readyPath: '/r', livePath: '/l' },
    });
    assert.deepEqual(c.keySource, { kind: 'server_api', socketPath: '/tmp/spire-server/private/api.sock', pollIntervalMs: 90_000 });
  });

  test('acme block', () => {
    const c = build(`
domains = ["oidc.example.org"]
acme {
  cache_dir = "acme"
  directory_url = "https://acme.test/dir"
  email = "ops@example.org"
  tos_accepted = true
}
file { path = "/etc/spire/bundle.json" }
`);
    assert.deepEqual(c.oidc.acme, { email: 'ops@example.org', tosAccepted: true, cacheDir: '/srv/oidc/acme', directoryUrl: 'https://acme.test/dir' });
    assert.deepEqual(c.keySource, { kind: 'file', path: '/etc/spire/bundle.json', pollIntervalMs: 10_000 });
    // cache_dir = "" disables the cache, as in SPIRE
    const off = build(`domains = ["x.org"]\nacme {\n email = "a@b.c"\n tos_accepted = true\n cache_dir = ""\n}\nfile { path = "b.json" }\n`);
    assert.equal(off.oidc.acme?.cacheDir, '');
    assert.equal(off.keySource.kind === 'file' && off.keySource.path, '/srv/oidc/b.json');
  });

  test('acme without tos_accepted or email is refused naming the keys', () => {
    const ps = problemsOf(`domains = ["x.org"]\nacme {\n cache_dir = "c"\n}\nfile { path = "b.json" }\n`);
    hasProblem(ps, /acme\.email \(line 2\): is required/);
    hasProblem(ps, /acme\.tos_accepted \(line 2\): the ACME terms of service must be accepted \(tos_accepted = true\)/);
  });

  test('serving_cert_file block', () => {
    const c = build(`
domains = ["oidc.example.org"]
serving_cert_file {
  cert_file_path = "tls/tls.crt"
  key_file_path = "/etc/oidc/tls/tls.key"
  addr = ":8443"
  file_sync_interval = "30s"
}
${MINIMAL.split('\n').slice(3).join('\n')}`);
    assert.deepEqual(c.oidc.servingCertFile, {
      certFilePath: '/srv/oidc/tls/tls.crt',
      keyFilePath: '/etc/oidc/tls/tls.key',
      addr: ':8443',
      fileSyncIntervalMs: 30_000,
    });
    const ps = problemsOf(`domains = ["x.org"]\nserving_cert_file {\n  addr = ":8443"\n  file_sync_interval = "soon"\n}\nfile { path = "b" }\n`);
    hasProblem(ps, /serving_cert_file\.cert_file_path \(line 2\): is required/);
    hasProblem(ps, /serving_cert_file\.key_file_path \(line 2\): is required/);
    hasProblem(ps, /serving_cert_file\.file_sync_interval \(line 4\): must be a duration/);
  });

  test('health_checks defaults: port 8008, /ready, /live', () => {
    const c = build(`${MINIMAL}\nhealth_checks {}\n`);
    assert.deepEqual(c.oidc.healthChecks, { addr: ':8008' });
    const v = validateOidcConfig(c.oidc);
    assert.deepEqual(v.healthChecks, { addr: { host: undefined, port: 8008 }, readyPath: '/ready', livePath: '/live' });
    hasProblem(problemsOf(`${MINIMAL}\nhealth_checks {\n  bind_port = 70000\n}\n`), /health_checks\.bind_port \(line \d+\): must be between 0 and 65535/);
    hasProblem(problemsOf(`${MINIMAL}\nhealth_checks {\n  ready_path = "ready"\n}\n`), /health_checks\.ready_path \(line \d+\): must start with "\/"/);
  });

  test('a non-URL jwt_issuer is refused with a message naming the field and line', () => {
    const ps = problemsOf(`${MINIMAL}jwt_issuer = "oidc.example.org"\n`);
    assert.equal(ps.length, 1);
    assert.equal(ps[0], 'oidc.conf: jwt_issuer (line 8): must be a URL with a scheme and host');
    hasProblem(problemsOf(`${MINIMAL}jwt_issuer = "not a url"\n`), /^oidc\.conf: jwt_issuer \(line 8\): must be a URL/);
    hasProblem(problemsOf(`${MINIMAL}jwt_issuer = "https://x.org/?a=b"\n`), /jwt_issuer \(line 8\): must not contain a query/);
    hasProblem(problemsOf(`${MINIMAL}jwt_issuer = 42\n`), /jwt_issuer \(line 8\): must be a string/);
    // http only with allow_insecure_scheme, and the message uses the file's key name
    hasProblem(problemsOf(`${MINIMAL}jwt_issuer = "http://x.org"\n`), /jwt_issuer \(line 8\): must use https \(http needs allow_insecure_scheme\)/);
    hasProblem(problemsOf(`${MINIMAL}jwks_uri = "/keys"\n`), /jwks_uri \(line 8\): must be a URL/);
  });

  test('the CLI message for a bad issuer reads "jwt_issuer ...: must be a URL"', () => {
    try {
      build(`${MINIMAL}jwt_issuer = "example"\n`);
      assert.fail('accepted');
    } catch (e) {
      assert.match((e as Error).message, /jwt_issuer \(line 8\): must be a URL/);
    }
  });

  test('unknown keys are errors naming key and line, at any depth', () => {
    const ps = problemsOf(`
domains = ["x.org"]
insecure_addr = ":80"
registration_api { socket_path = "/x" }
colour = "blue"
workload_api {
  socket_path = "/s"
  trust_domain = "example.org"
  socket = "/y"
}
health_checks {
  port = 1
}
`);
    hasProblem(ps, /registration_api \(line 4\): unknown key/);
    hasProblem(ps, /colour \(line 5\): unknown key/);
    hasProblem(ps, /workload_api\.socket \(line 9\): unknown key/);
    hasProblem(ps, /health_checks\.port \(line 12\): unknown key/);
    assert.equal(ps.length, 4, ps.join('\n'));
  });

  test('exactly one key source: none, two, three', () => {
    const none = problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\n');
    hasProblem(none, /exactly one of the server_api, workload_api, or file sections must be configured/);
    const two = problemsOf(`${MINIMAL}server_api {\n  address = "unix:///tmp/api.sock"\n}\n`);
    assert.deepEqual(two, [
      'oidc.conf: workload_api (line 4): cannot be combined with server_api: the server_api, workload_api, and file sections are mutually exclusive',
    ]);
    const three = problemsOf(`${MINIMAL}server_api {\n  address = "unix:///tmp/api.sock"\n}\nfile { path = "/b" }\n`);
    assert.equal(three.length, 1);
  });

  test('workload_api: socket_path and trust_domain required; trust domain checked', () => {
    const ps = problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\nworkload_api {\n  poll_interval = "0s"\n}\n');
    hasProblem(ps, /workload_api\.socket_path \(line 3\): must be configured/);
    hasProblem(ps, /workload_api\.trust_domain \(line 3\): must be configured/);
    hasProblem(ps, /workload_api\.poll_interval \(line 4\): must be positive/);
    hasProblem(
      problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\nworkload_api {\n  socket_path = "/s"\n  trust_domain = "Example.ORG"\n}\n'),
      /workload_api\.trust_domain \(line 5\)/,
    );
    // a unix: URL is accepted as well as a path; relative paths resolve against the base dir
    const u = build(
      'domains = ["x.org"]\ninsecure_addr = ":80"\nworkload_api {\n  socket_path = "unix:///run/agent.sock"\n  trust_domain = "example.org"\n  poll_interval = "2s"\n}\n',
    );
    assert.deepEqual(u.keySource, { kind: 'workload_api', socketPath: '/run/agent.sock', trustDomain: 'example.org', pollIntervalMs: 2000 });
    const r = build('domains = ["x.org"]\ninsecure_addr = ":80"\nworkload_api {\n  socket_path = "agent.sock"\n  trust_domain = "example.org"\n}\n');
    assert.equal(r.keySource.kind === 'workload_api' && r.keySource.socketPath, '/srv/oidc/agent.sock');
  });

  test('server_api: address must be a unix: socket address', () => {
    hasProblem(problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\nserver_api {}\n'), /server_api\.address \(line 3\): must be configured/);
    hasProblem(
      problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\nserver_api {\n  address = "/tmp/api.sock"\n}\n'),
      /server_api\.address \(line 4\): must be a unix socket address like "unix:\/\/\/tmp\/spire-server\/private\/api\.sock"/,
    );
    hasProblem(
      problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\nserver_api {\n  address = "tcp://127.0.0.1:8081"\n}\n'),
      /server_api\.address \(line 4\)/,
    );
    hasProblem(
      problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\nserver_api {\n  address = "unix:///a"\n  poll_interval = "often"\n}\n'),
      /server_api\.poll_interval \(line 5\): must be a duration/,
    );
    const c = build('domains = ["x.org"]\ninsecure_addr = ":80"\nserver_api {\n  address = "unix:/a/api.sock"\n  poll_interval = 5\n}\n');
    assert.deepEqual(c.keySource, { kind: 'server_api', socketPath: '/a/api.sock', pollIntervalMs: 5000 });
  });

  test('file source: path required', () => {
    hasProblem(problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\nfile {\n  poll_interval = "1s"\n}\n'), /file\.path \(line 3\): must be configured/);
  });

  test('domains and listeners are checked with the file key names', () => {
    hasProblem(problemsOf('insecure_addr = ":80"\nfile { path = "/b" }\n'), /domains \(line 1\): at least one domain must be configured/);
    hasProblem(
      problemsOf('domains = ["X.org"]\ninsecure_addr = ":80"\nfile { path = "/b" }\n'),
      /domains\[0\] \(line 1\): "X\.org" must already be lowercase punycode/,
    );
    hasProblem(problemsOf('domains = "x.org"\ninsecure_addr = "80"\nfile { path = "/b" }\n'), /insecure_addr \(line 2\): "80" must be host:port or :port/);
    hasProblem(
      problemsOf('domains = ["x.org"]\nfile { path = "/b" }\n'),
      /listener \(line 1\): one of insecure_addr, listen_socket_path, serving_cert_file or acme must be configured/,
    );
    hasProblem(
      problemsOf('domains = ["x.org"]\ninsecure_addr = ":80"\nlisten_socket_path = "/s"\nfile { path = "/b" }\n'),
      /listen_socket_path \(line 3\): cannot be combined with insecure_addr/,
    );
    hasProblem(
      problemsOf('domains = ["x.org"]\nallow_insecure_scheme = true\nacme {\n email = "a@b.c"\n tos_accepted = true\n}\nfile { path = "/b" }\n'),
      /allow_insecure_scheme \(line 2\): is only allowed with insecure_addr or listen_socket_path/,
    );
    hasProblem(problemsOf(`${MINIMAL}server_path_prefix = "tenant"\n`), /server_path_prefix \(line 8\): must be a path starting with "\/"/);
    hasProblem(problemsOf(`${MINIMAL}set_key_use = "yes"\n`), /set_key_use \(line 8\): must be true or false/);
    hasProblem(problemsOf(`${MINIMAL}log_level = "loud"\n`), /log_level \(line 8\): unknown level "loud"/);
    hasProblem(problemsOf(`${MINIMAL}log_format = "xml"\n`), /log_format \(line 8\): must be "text" or "json"/);
  });

  test('a key set twice is refused', () => {
    hasProblem(problemsOf(`${MINIMAL}insecure_addr = ":81"\n`), /insecure_addr \(line 8\): is set more than once/);
  });

  test('unixSocketPathOf', () => {
    assert.equal(unixSocketPathOf('unix:///tmp/a.sock'), '/tmp/a.sock');
    assert.equal(unixSocketPathOf('unix:/tmp/a.sock'), '/tmp/a.sock');
    assert.equal(unixSocketPathOf('unix:rel/a.sock'), 'rel/a.sock');
    assert.equal(unixSocketPathOf('unix://host/a.sock'), undefined);
    assert.equal(unixSocketPathOf('unix:'), undefined);
    assert.equal(unixSocketPathOf('/tmp/a.sock'), undefined);
  });

  test('expandEnv: $VAR and ${VAR}; unset is empty; a lone $ stays', () => {
    const env = { TD: 'example.org', SOCK_DIR: '/run/agent' };
    assert.equal(
      expandEnv('td = "$TD" s = "${SOCK_DIR}/api.sock" u = "$UNSET" c = "$" p = "100$"', env),
      'td = "example.org" s = "/run/agent/api.sock" u = "" c = "$" p = "100$"',
    );
  });
});

describe('loadOidcConfigFile', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'oidc-conf-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('HCL file with -expandEnv', () => {
    const path = join(dir, 'oidc-discovery-provider.conf');
    writeFileSync(
      path,
      'domains = ["${HOST}"]\njwt_issuer = "https://${HOST}"\nserving_cert_file {\n  cert_file_path = "/c"\n  key_file_path = "/k"\n}\nworkload_api {\n  socket_path = "$SOCK"\n  trust_domain = "$TD"\n}\n',
    );
    const env = { HOST: 'oidc.example.org', SOCK: '/run/agent.sock', TD: 'example.org' };
    const c = loadOidcConfigFile(path, { expandEnv: env });
    assert.deepEqual(c.oidc.domains, ['oidc.example.org']);
    assert.equal(c.oidc.jwtIssuer, 'https://oidc.example.org');
    assert.deepEqual(c.keySource, { kind: 'workload_api', socketPath: '/run/agent.sock', trustDomain: 'example.org', pollIntervalMs: 10_000 });
    // without -expandEnv the text is taken literally, and HCL has no interpolation
    assert.throws(() => loadOidcConfigFile(path), /oidc-discovery-provider\.conf: line 1: template interpolation is not supported/);
  });

  test('YAML file', () => {
    const path = join(dir, 'oidc.yaml');
    writeFileSync(
      path,
      [
        'domains: [oidc.example.org]',
        'jwt_issuer: https://oidc.example.org',
        'insecure_addr: "127.0.0.1:8080"',
        'server_api:',
        '  address: unix:///tmp/spire-server/private/api.sock',
        '  poll_interval: 2s',
        'health_checks:',
        '  bind_port: 8009',
        '',
      ].join('\n'),
    );
    const c = loadOidcConfigFile(path);
    assert.deepEqual(c.keySource, { kind: 'server_api', socketPath: '/tmp/spire-server/private/api.sock', pollIntervalMs: 2000 });
    assert.deepEqual(c.oidc.healthChecks, { addr: ':8009' });
    writeFileSync(path, 'domains: [oidc.example.org]\ninsecure_addr: ":80"\njwt_issuer: oidc.example.org\nfile:\n  path: /b\n  format: spiffe\n');
    assert.throws(
      () => loadOidcConfigFile(path),
      (e: Error) => {
        assert.match(e.message, /jwt_issuer \(line 3\): must be a URL/);
        assert.match(e.message, /file\.format \(line 6\): unknown key/);
        return true;
      },
    );
  });

  test('JSON file', () => {
    const path = join(dir, 'oidc.json');
    writeFileSync(
      path,
      JSON.stringify(
        {
          domains: ['oidc.example.org'],
          listen_socket_path: '/run/oidc.sock',
          file: { path: '/etc/bundle.json', poll_interval: '500ms' },
        },
        null,
        2,
      ),
    );
    const c = loadOidcConfigFile(path);
    assert.equal(c.oidc.listenSocketPath, '/run/oidc.sock');
    assert.deepEqual(c.keySource, { kind: 'file', path: '/etc/bundle.json', pollIntervalMs: 500 });
    writeFileSync(
      path,
      JSON.stringify(
        { domains: ['x.org'], insecure_addr: ':80', server_api: { address: 'unix:///a' }, workload_api: { socket_path: '/s', trust_domain: 'x.org' } },
        null,
        2,
      ),
    );
    assert.throws(() => loadOidcConfigFile(path), /mutually exclusive/);
  });

  test('a missing file names the path', () => {
    assert.throws(() => loadOidcConfigFile(join(dir, 'absent.conf')), /cannot read config file .*absent\.conf: ENOENT/);
  });
});

test("SPIRE's experimental blocks (Windows named pipes) are accepted with a warning naming them, not dropped or refused", () => {
  const c = build(`domains = ["localhost"]
insecure_addr = "127.0.0.1:8008"
allow_insecure_scheme = true
experimental {
  listen_named_pipe_name = "oidc"
}
server_api {
  address = "unix:///tmp/api.sock"
  experimental {
    named_pipe_name = "spire-server"
  }
}
`);
  assert.deepEqual(c.warnings, [
    'server_api.experimental is not implemented yet; its Windows named pipe settings have no effect here (oidc.conf line 9)',
    'experimental is not implemented yet; its Windows named pipe listener settings have no effect here (oidc.conf line 4)',
  ]);
  assert.deepEqual(
    build('domains = ["localhost"]\ninsecure_addr = "127.0.0.1:8008"\nallow_insecure_scheme = true\nfile {\n  path = "b.json"\n}\n').warnings,
    [],
  );
});
