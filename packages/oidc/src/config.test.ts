import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isZtwimError } from '@ztwim/core';
import { validateOidcConfig } from './config.ts';

const base = { domains: ['oidc.example.org'], insecureAddr: ':8080' };

const bad: Array<{ name: string; cfg: unknown; error: RegExp }> = [
  { name: 'not an object', cfg: 'x', error: /oidc config: must be an object/ },
  { name: 'no domains', cfg: { insecureAddr: ':1' }, error: /^domains: at least one domain must be configured$/ },
  { name: 'empty domains', cfg: { ...base, domains: [] }, error: /^domains: at least one domain must be configured$/ },
  { name: 'domain with port', cfg: { ...base, domains: ['a.example:443'] }, error: /^domains\[0\]: "a.example:443" must be a host name/ },
  { name: 'uppercase domain', cfg: { ...base, domains: ['ok.example', 'A.example'] }, error: /^domains\[1\]: "A.example" must already be lowercase punycode$/ },
  { name: 'unicode domain', cfg: { ...base, domains: ['bücher.example'] }, error: /^domains\[0\]: .*punycode/ },
  { name: 'issuer not a URL', cfg: { ...base, jwtIssuer: 'oidc.example.org' }, error: /^jwtIssuer: must be a URL with a scheme and host$/ },
  { name: 'issuer without host', cfg: { ...base, jwtIssuer: 'https:///path' }, error: /^jwtIssuer: must be a URL with a scheme and host$/ },
  {
    name: 'issuer http without allowInsecureScheme',
    cfg: { ...base, jwtIssuer: 'http://oidc.example.org' },
    error: /^jwtIssuer: must use https \(http needs allowInsecureScheme\)$/,
  },
  { name: 'issuer other scheme', cfg: { ...base, jwtIssuer: 'ftp://oidc.example.org' }, error: /^jwtIssuer: scheme "ftp" is not supported/ },
  { name: 'issuer with query', cfg: { ...base, jwtIssuer: 'https://oidc.example.org/?a=1' }, error: /^jwtIssuer: must not contain a query$/ },
  { name: 'issuer with fragment', cfg: { ...base, jwtIssuer: 'https://oidc.example.org/#x' }, error: /^jwtIssuer: must not contain a fragment$/ },
  { name: 'issuer with user info', cfg: { ...base, jwtIssuer: 'https://u:p@oidc.example.org' }, error: /^jwtIssuer: must not contain user info$/ },
  { name: 'issuer not a string', cfg: { ...base, jwtIssuer: 42 }, error: /^jwtIssuer: must be a string$/ },
  {
    name: 'no listener',
    cfg: { domains: ['a.example'] },
    error: /^listener: one of insecureAddr, listenSocketPath, servingCertFile or acme must be configured$/,
  },
  { name: 'two listeners', cfg: { ...base, listenSocketPath: '/tmp/x.sock' }, error: /^listenSocketPath: cannot be combined with insecureAddr$/ },
  { name: 'bad address', cfg: { ...base, insecureAddr: 'localhost' }, error: /^insecureAddr: "localhost" must be host:port or :port$/ },
  { name: 'port out of range', cfg: { ...base, insecureAddr: ':70000' }, error: /^insecureAddr: ":70000" has a port out of range$/ },
  {
    name: 'allowInsecureScheme with TLS',
    cfg: { domains: ['a.example'], allowInsecureScheme: true, servingCertFile: { certFilePath: 'c', keyFilePath: 'k' } },
    error: /^allowInsecureScheme: is only allowed with insecureAddr or listenSocketPath$/,
  },
  {
    name: 'serving cert without key',
    cfg: { domains: ['a.example'], servingCertFile: { certFilePath: 'c' } },
    error: /^servingCertFile.keyFilePath: is required$/,
  },
  {
    name: 'serving cert bad interval',
    cfg: { domains: ['a.example'], servingCertFile: { certFilePath: 'c', keyFilePath: 'k', fileSyncIntervalMs: -1 } },
    error: /^servingCertFile.fileSyncIntervalMs: must be a positive integer$/,
  },
  {
    name: 'acme without tos',
    cfg: { domains: ['a.example'], acme: { email: 'a@b.example' } },
    error: /^acme.tosAccepted: the ACME terms of service must be accepted/,
  },
  { name: 'acme without email', cfg: { domains: ['a.example'], acme: { tosAccepted: true } }, error: /^acme.email: is required$/ },
  {
    name: 'acme http directory',
    cfg: { domains: ['a.example'], acme: { tosAccepted: true, email: 'a@b.example', directoryUrl: 'http://x.example/dir' } },
    error: /^acme.directoryUrl: must use https/,
  },
  { name: 'unknown key', cfg: { ...base, jwt_issuer: 'https://x.example' }, error: /^jwt_issuer: unknown setting$/ },
  {
    name: 'unknown nested key',
    cfg: { domains: ['a.example'], servingCertFile: { certFilePath: 'c', keyFilePath: 'k', bogus: 1 } },
    error: /^servingCertFile.bogus: unknown setting$/,
  },
  { name: 'metrics without address', cfg: { ...base, metrics: {} }, error: /^metrics.addr: is required unless healthChecks is configured$/ },
  { name: 'too many keys', cfg: { ...base, maxKeys: 101 }, error: /^maxKeys: must be at most 100/ },
  { name: 'setKeyUse not a boolean', cfg: { ...base, setKeyUse: 'true' }, error: /^setKeyUse: must be true or false$/ },
  { name: 'several problems at once', cfg: { domains: [], jwtIssuer: 'nope' }, error: /^3 problems: domains: .*; jwtIssuer: .*; listener: / },
];

for (const c of bad) {
  test(`config refused: ${c.name}`, () => {
    assert.throws(
      () => validateOidcConfig(c.cfg),
      (e: unknown) => {
        assert.ok(isZtwimError(e, 'ERR_CONFIG'), String(e));
        assert.match(e.message, c.error);
        return true;
      },
    );
  });
}

test('config accepted with defaults applied', () => {
  const v = validateOidcConfig({
    domains: ['oidc.example.org', 'oidc.example.org', 'localhost'],
    jwtIssuer: 'https://oidc.example.org/td',
    servingCertFile: { certFilePath: '/c.pem', keyFilePath: '/k.pem' },
    healthChecks: {},
    metrics: { path: '/metrics' },
  });
  assert.deepEqual(v.domains, ['oidc.example.org', 'localhost']);
  assert.equal(v.issuer, 'https://oidc.example.org/td');
  assert.equal(v.serverPathPrefix, '/');
  assert.equal(v.setKeyUse, false);
  assert.equal(v.maxKeys, 100);
  assert.deepEqual(v.listener, {
    kind: 'servingCertFile',
    addr: { host: undefined, port: 443 },
    certFilePath: '/c.pem',
    keyFilePath: '/k.pem',
    fileSyncIntervalMs: 60_000,
  });
  assert.deepEqual(v.healthChecks, { addr: { host: undefined, port: 8008 }, readyPath: '/ready', livePath: '/live' });
  assert.deepEqual(v.metrics, { addr: undefined, path: '/metrics' });
});

test('config accepted: http issuer with allowInsecureScheme, IPv6 address, acme defaults', () => {
  const a = validateOidcConfig({ domains: ['localhost'], jwtIssuer: 'http://localhost:8080', allowInsecureScheme: true, insecureAddr: '[::1]:8080' });
  assert.equal(a.issuer, 'http://localhost:8080');
  assert.deepEqual(a.listener, { kind: 'insecure', addr: { host: '::1', port: 8080 } });
  const b = validateOidcConfig({ domains: ['a.example'], acme: { email: 'ops@a.example', tosAccepted: true } });
  assert.equal(b.listener.kind, 'acme');
  if (b.listener.kind === 'acme') {
    assert.equal(b.listener.directoryUrl, 'https://acme-v02.api.letsencrypt.org/directory');
    assert.equal(b.listener.cacheDir, './.acme-cache');
    assert.deepEqual(b.listener.addr, { host: undefined, port: 443 });
    assert.deepEqual(b.listener.httpChallengeAddr, { host: undefined, port: 80 });
  }
});
