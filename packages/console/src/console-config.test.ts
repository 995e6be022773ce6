import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText, problems, Section, throwIfProblems, type ConfigFormat } from '@ztwim/core';
import { isLoopbackHost, readConsoleConfig, type ConsoleConfig } from './console-config.ts';

/** Reads the console block of a config text as `server validate` would; throws the problems. */
function read(text: string, format: ConfigFormat = 'hcl'): { cfg: ConsoleConfig | undefined; warnings: readonly string[] } {
  const p = problems('server.conf');
  const root = new Section(parseConfigText(text, format, 'server.conf'), '', p);
  const cfg = readConsoleConfig(root, '/etc/ztwim');
  root.done();
  throwIfProblems(p);
  return { cfg, warnings: p.warnings };
}

describe('console { } config block', () => {
  it('is absent unless written, and takes loopback defaults when empty', () => {
    assert.equal(read('').cfg, undefined);
    const { cfg } = read('console {}');
    assert.deepEqual(cfg, { bindAddress: '127.0.0.1', bindPort: 8090, sessionLifetimeMs: 12 * 3600_000, tokenLogin: true });
  });

  it('reads every key in HCL and in JSON alike, with OIDC defaults and relative paths from the config dir', () => {
    const hcl = `
console {
  bind_address = "0.0.0.0"
  bind_port = 9443
  serving_cert_file {
    cert_file_path = "tls/console.crt"
    key_file_path = "/secure/console.key"
  }
  session_lifetime = "8h"
  admin_token_file = "admin.token"
  token_login_enabled = false
  oidc {
    issuer = "https://keycloak.example.org/realms/ztwim"
    client_id = "ztwim-console"
    client_secret_file = "oidc.secret"
    redirect_uri = "https://console.example.org:9443/oidc/callback"
    role_claim = "realm_access.roles"
  }
}`;
    const json = JSON.stringify({
      console: {
        bind_address: '0.0.0.0',
        bind_port: 9443,
        serving_cert_file: { cert_file_path: 'tls/console.crt', key_file_path: '/secure/console.key' },
        session_lifetime: '8h',
        admin_token_file: 'admin.token',
        token_login_enabled: false,
        oidc: {
          issuer: 'https://keycloak.example.org/realms/ztwim',
          client_id: 'ztwim-console',
          client_secret_file: 'oidc.secret',
          redirect_uri: 'https://console.example.org:9443/oidc/callback',
          role_claim: 'realm_access.roles',
        },
      },
    });
    const a = read(hcl);
    const b = read(json, 'json');
    assert.deepEqual(a.cfg, b.cfg);
    assert.deepEqual(a.cfg, {
      bindAddress: '0.0.0.0',
      bindPort: 9443,
      tls: { certFile: '/etc/ztwim/tls/console.crt', keyFile: '/secure/console.key' },
      sessionLifetimeMs: 8 * 3600_000,
      adminTokenFile: '/etc/ztwim/admin.token',
      tokenLogin: false,
      oidc: {
        issuer: 'https://keycloak.example.org/realms/ztwim',
        clientId: 'ztwim-console',
        clientSecretFile: '/etc/ztwim/oidc.secret',
        redirectUri: 'https://console.example.org:9443/oidc/callback',
        scopes: ['openid', 'profile'],
        roleClaim: 'realm_access.roles',
        adminValues: ['ztwim-admins'],
        viewerValues: ['ztwim-viewers'],
      },
    });
    assert.match(a.warnings.join('\n'), /console\.admin_token_file is not used: token_login_enabled is false/);
  });

  it('refuses a non-loopback address without TLS, saying why', () => {
    assert.throws(
      () => read('console {\n  bind_address = "0.0.0.0"\n}'),
      /server\.conf: console\.bind_address \(line 2\): "0\.0\.0\.0" is not a loopback address, and without TLS the console would send login tokens and session cookies in clear text/,
    );
    assert.doesNotThrow(() => read('console {\n  bind_address = "::1"\n}'));
    assert.doesNotThrow(() => read('console {\n  bind_address = "localhost"\n}'));
  });

  it('names each wrong key with its line, all at once', () => {
    const text = `console {
  bind_port = 70000
  session_lifetime = "10s"
  serving_cert_file {
    cert_file_path = "a.crt"
  }
  colour = "blue"
  oidc {
    issuer = "http://idp.example.org"
    redirect_uri = "http://127.0.0.1:8090/callback"
    admin_values = ["ops"]
    viewer_values = ["ops"]
    client_secret = "hunter2"
  }
}`;
    let message = '';
    try {
      read(text);
    } catch (e) {
      message = (e as Error).message;
    }
    for (const want of [
      /console\.bind_port \(line 2\): must be between 0 and 65535/,
      /console\.session_lifetime \(line 3\): must be at least 1m/,
      /console\.serving_cert_file\.key_file_path \(line 4\): is required/,
      /console\.colour \(line 7\): unknown key/,
      /console\.oidc\.issuer \(line 9\): "http:\/\/idp\.example\.org": the issuer must be https \(plain http only on a loopback address\)/,
      /console\.oidc\.client_id \(line 8\): is required/,
      /console\.oidc\.redirect_uri \(line 10\): must end in the console's \/oidc\/callback/,
      /console\.oidc\.viewer_values \(line 12\): "ops" is both an admin and a viewer value/,
      /console\.oidc\.client_secret \(line 13\): is not read from the config: put the secret in a file/,
    ]) {
      assert.match(message, want);
    }
  });

  it('refuses a console nobody could log in to, and an OIDC login off loopback without its redirect URI', () => {
    assert.throws(
      () => read('console {\n  token_login_enabled = false\n}'),
      /console\.token_login_enabled \(line 2\): is false and no oidc \{ \} block is set: nobody could log in/,
    );
    const offLoopback = `console {
  bind_address = "10.0.0.5"
  serving_cert_file {
    cert_file_path = "c"
    key_file_path = "k"
  }
  oidc {
    issuer = "https://idp.example.org"
    client_id = "c"
  }
}`;
    assert.throws(() => read(offLoopback), /console\.oidc\.redirect_uri \(line 7\): is required when the console binds to "10\.0\.0\.5"/);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.org', '128.0.0.1', 'localhost.example.org']) assert.equal(isLoopbackHost(h), false, h);
  });
});
