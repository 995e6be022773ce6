import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startOidcProvider, type OidcProvider } from './provider.ts';
import { StaticJwksSource } from './jwks-source.ts';
import { checkIssuer, checkPassed, formatFindings, type CheckTarget, type Finding } from './check.ts';
import type { JsonWebKey } from './jwk.ts';
import { makeKey } from './testing/keys.ts';
import { makeCa, issueServerCert, type TestCa } from '@ztwim/testkit';

const rsa = makeKey('rsa-2048', 'rsa-1');
const ec = makeKey('ec-p256', 'ec-1');
const ec384 = makeKey('ec-p384', 'ec384-1');

let ca: TestCa;
let certPath = '';
let keyPath = '';

before(() => {
  ca = makeCa();
  const c = issueServerCert(ca, 'check', ['localhost']);
  certPath = c.certPath;
  keyPath = c.keyPath;
});

async function tlsProvider(keys: readonly JsonWebKey[], extra: Record<string, unknown> = {}): Promise<{ p: OidcProvider; issuer: string }> {
  const p = await startOidcProvider(
    { domains: ['localhost'], servingCertFile: { certFilePath: certPath, keyFilePath: keyPath, addr: '127.0.0.1:0' }, ...extra },
    { source: new StaticJwksSource(keys) },
  );
  const port = new URL(p.urls.https as string).port;
  return { p, issuer: `https://localhost:${port}` };
}

const errors = (f: readonly Finding[]): string[] => f.filter((x) => x.severity === 'error').map((x) => x.rule);

describe('checkIssuer against a live provider', () => {
  const table: Array<{
    name: string;
    keys: JsonWebKey[];
    setKeyUse?: boolean;
    target: CheckTarget;
    pass: boolean;
    errorRules?: string[];
    message?: RegExp;
  }> = [
    { name: 'vault: EC + RSA, no use', keys: [ec.publicJwk, rsa.publicJwk], target: 'vault', pass: true },
    { name: 'vault: ES384 only', keys: [ec384.publicJwk], target: 'vault', pass: true },
    { name: 'entra: RSA with use=sig', keys: [rsa.publicJwk], setKeyUse: true, target: 'entra', pass: true },
    {
      name: 'entra: missing use=sig',
      keys: [rsa.publicJwk],
      target: 'entra',
      pass: false,
      errorRules: ['jwks.use-sig'],
      message: /Entra ID requires use=sig on every key/,
    },
    {
      name: 'entra: EC keys only',
      keys: [ec.publicJwk],
      setKeyUse: true,
      target: 'entra',
      pass: false,
      errorRules: ['discovery.algs', 'jwks.no-usable-key'],
      message: /Entra ID supports only RS256/,
    },
    { name: 'aws: RSA + ES256', keys: [rsa.publicJwk, ec.publicJwk], target: 'aws', pass: true },
    { name: 'gcp: RSA + ES256', keys: [rsa.publicJwk, ec.publicJwk], target: 'gcp', pass: true },
    {
      name: 'gcp: ES384 key',
      keys: [rsa.publicJwk, ec384.publicJwk],
      target: 'gcp',
      pass: false,
      errorRules: ['jwks.alg-target'],
      message: /Google Cloud accepts only RS256, ES256/,
    },
  ];
  for (const c of table) {
    test(c.name, async () => {
      const { p, issuer } = await tlsProvider(c.keys, c.setKeyUse === true ? { setKeyUse: true } : {});
      try {
        const f = await checkIssuer(issuer, c.target, { ca: ca.certPem });
        assert.equal(checkPassed(f), c.pass, formatFindings(f));
        if (c.errorRules !== undefined) assert.deepEqual(errors(f).sort(), [...c.errorRules].sort(), formatFindings(f));
        if (c.message !== undefined) assert.match(formatFindings(f), c.message);
      } finally {
        await p.close();
      }
    });
  }

  test('issuer must equal the URL exactly (trailing slash)', async () => {
    const { p, issuer } = await tlsProvider([rsa.publicJwk]);
    try {
      const f = await checkIssuer(`${issuer}/`, 'vault', { ca: ca.certPem });
      assert.deepEqual(errors(f), ['discovery.issuer']);
      assert.match(formatFindings(f), /does not equal the issuer URL/);
    } finally {
      await p.close();
    }
  });

  test('untrusted TLS certificate is an error', async () => {
    const { p, issuer } = await tlsProvider([rsa.publicJwk]);
    try {
      const f = await checkIssuer(issuer, 'aws', { ca: makeCa(undefined, 'other').certPem });
      assert.deepEqual(errors(f), ['discovery.fetch']);
    } finally {
      await p.close();
    }
  });

  test('http issuer: error for the clouds, warning for Vault', async () => {
    const p = await startOidcProvider(
      { domains: ['localhost'], insecureAddr: '127.0.0.1:0', allowInsecureScheme: true, setKeyUse: true },
      { source: new StaticJwksSource([rsa.publicJwk]) },
    );
    try {
      const issuer = `http://localhost:${new URL(p.urls.http as string).port}`;
      for (const target of ['entra', 'aws', 'gcp'] as const) {
        const f = await checkIssuer(issuer, target);
        assert.deepEqual(errors(f), ['issuer.https', 'jwks_uri.https'], `${target}\n${formatFindings(f)}`);
      }
      const v = await checkIssuer(issuer, 'vault');
      assert.equal(checkPassed(v), true, formatFindings(v));
      assert.ok(v.some((x) => x.rule === 'issuer.https' && x.severity === 'warning'));
    } finally {
      await p.close();
    }
  });

  test('a custom fetch (WHATWG) is used when given', async () => {
    const p = await startOidcProvider(
      { domains: ['localhost'], insecureAddr: '127.0.0.1:0', allowInsecureScheme: true },
      { source: new StaticJwksSource([rsa.publicJwk]) },
    );
    try {
      const issuer = `http://localhost:${new URL(p.urls.http as string).port}`;
      const seen: string[] = [];
      const f = await checkIssuer(issuer, 'vault', {
        fetch: (url, init) => {
          seen.push(url);
          return fetch(url, init);
        },
      });
      assert.equal(checkPassed(f), true, formatFindings(f));
      assert.deepEqual(seen, [`${issuer}/.well-known/openid-configuration`, `${issuer}/keys`]);
    } finally {
      await p.close();
    }
  });
});

describe('checkIssuer against a misbehaving server', () => {
  let server: Server;
  let base = '';
  let discovery: (base: string) => { status?: number; type?: string; body: string; location?: string } = () => ({ body: '' });
  let jwks: () => { status?: number; type?: string; body: string; location?: string } = () => ({ body: '' });

  before(async () => {
    server = createServer((req, res) => {
      const r = req.url === '/.well-known/openid-configuration' ? discovery(base) : req.url === '/keys' ? jwks() : { status: 404, body: 'nope' };
      res.writeHead(r.status ?? 200, {
        'Content-Type': r.type ?? 'application/json',
        ...(r.location === undefined ? {} : { Location: r.location }),
      });
      res.end(r.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://localhost:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
  });

  const doc = (b: string, over: Record<string, unknown> = {}): string =>
    JSON.stringify({
      issuer: b,
      jwks_uri: `${b}/keys`,
      authorization_endpoint: '',
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      ...over,
    });
  const shortX = {
    ...ec.publicJwk,
    kid: 'short',
    x: Buffer.from(ec.publicJwk.x as string, 'base64url')
      .subarray(1)
      .toString('base64url'),
  };

  const cases: Array<{
    name: string;
    target: CheckTarget;
    disc?: (b: string) => { status?: number; type?: string; body: string; location?: string };
    keys?: () => { status?: number; type?: string; body: string; location?: string };
    rules: string[];
    message?: RegExp;
  }> = [
    {
      name: 'redirect on discovery',
      target: 'vault',
      disc: (b) => ({ status: 302, location: `${b}/elsewhere`, body: '' }),
      rules: ['discovery.redirect'],
      message: /answered 302 redirect to .*elsewhere; relying parties require 200 directly/,
    },
    {
      name: 'redirect on keys',
      target: 'aws',
      keys: () => ({ status: 301, location: '/k2', body: '' }),
      rules: ['jwks.redirect'],
    },
    {
      name: 'keys 500',
      target: 'gcp',
      keys: () => ({ status: 500, type: 'text/plain', body: 'document not available\n' }),
      rules: ['jwks.status'],
      message: /answered 500: document not available/,
    },
    {
      name: 'wrong content type',
      target: 'vault',
      keys: () => ({ type: 'text/html', body: JSON.stringify({ keys: [rsa.publicJwk] }) }),
      rules: ['jwks.content-type'],
    },
    { name: 'not JSON', target: 'vault', keys: () => ({ body: '<html>' }), rules: ['jwks.json'] },
    {
      name: 'empty subject_types_supported',
      target: 'vault',
      disc: (b) => ({ body: doc(b, { subject_types_supported: [] }) }),
      rules: ['discovery.subject_types_supported'],
    },
    {
      name: 'private key members',
      target: 'vault',
      keys: () => ({ body: JSON.stringify({ keys: [rsa.privateJwk] }) }),
      rules: ['jwks.private'],
      message: /publishes private members d, p, q, dp, dq, qi/,
    },
    {
      name: 'short EC coordinate',
      target: 'vault',
      keys: () => ({ body: JSON.stringify({ keys: [rsa.publicJwk, shortX] }) }),
      rules: ['jwks.ec-length', 'jwks.invalid'],
      message: /31-byte x coordinate; P-256 needs exactly 32 bytes/,
    },
    {
      name: 'OKP key',
      target: 'vault',
      keys: () => ({ body: JSON.stringify({ keys: [rsa.publicJwk, makeKey('ed25519', 'okp').publicJwk] }) }),
      rules: ['jwks.kty'],
      message: /go-jose rejects the whole set/,
    },
    {
      name: 'missing kid',
      target: 'gcp',
      keys: () => ({ body: JSON.stringify({ keys: [{ ...rsa.publicJwk, kid: undefined }] }) }),
      rules: ['jwks.kid'],
      message: /Google requires kid/,
    },
    {
      name: 'duplicate kid',
      target: 'vault',
      keys: () => ({ body: JSON.stringify({ keys: [rsa.publicJwk, { ...ec.publicJwk, kid: rsa.kid }] }) }),
      rules: ['jwks.kid-unique'],
    },
    { name: 'use=jwt-svid', target: 'aws', keys: () => ({ body: JSON.stringify({ keys: [{ ...rsa.publicJwk, use: 'jwt-svid' }] }) }), rules: ['jwks.use'] },
    {
      name: 'alg not fitting the key',
      target: 'vault',
      keys: () => ({ body: JSON.stringify({ keys: [{ ...ec.publicJwk, alg: 'ES384' }, rsa.publicJwk] }) }),
      rules: ['jwks.alg'],
    },
    {
      name: 'more than 100 keys (entra)',
      target: 'entra',
      keys: () => ({ body: JSON.stringify({ keys: Array.from({ length: 101 }, (_, i) => ({ ...rsa.publicJwk, kid: `k${i}`, use: 'sig' })) }) }),
      rules: ['jwks.count'],
      message: /Entra ID keeps only the first 100/,
    },
    { name: 'no keys', target: 'vault', keys: () => ({ body: JSON.stringify({ keys: [] }) }), rules: ['jwks.empty'] },
    { name: 'baseline passes', target: 'vault', rules: [] },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      discovery = c.disc ?? ((b) => ({ body: doc(b) }));
      jwks = c.keys ?? (() => ({ body: JSON.stringify({ keys: [rsa.publicJwk] }) }));
      const f = await checkIssuer(base, c.target);
      // The base is plain http: ignore that rule here (tested above).
      const errs = errors(f).filter((r) => r !== 'issuer.https' && r !== 'jwks_uri.https');
      assert.deepEqual(errs.sort(), [...c.rules].sort(), formatFindings(f));
      if (c.message !== undefined) assert.match(formatFindings(f), c.message);
    });
  }

  test('issuer URL problems are reported before fetching', async () => {
    const f = await checkIssuer('https://oidc.example.org/?x=1#y', 'aws', { fetch: () => Promise.reject(new Error('offline')) });
    assert.deepEqual(errors(f), ['issuer.query', 'issuer.fragment', 'discovery.fetch']);
    const g = await checkIssuer('not a url', 'vault');
    assert.deepEqual(errors(g), ['issuer.url']);
  });
});

test('formatFindings: one line per finding, errors first, then a verdict', () => {
  const out = formatFindings(
    [
      { severity: 'warning', rule: 'issuer.port', message: 'w' },
      { severity: 'error', rule: 'jwks.use-sig', message: 'Entra ID requires use=sig on every key' },
    ],
    { url: 'https://x.example', target: 'entra' },
  );
  const lines = out.trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0] ?? '', /^ERROR\s+jwks\.use-sig\s+Entra ID requires use=sig on every key$/);
  assert.match(lines[1] ?? '', /^WARNING\s+issuer\.port\s+w$/);
  assert.equal(lines[2], 'FAIL https://x.example for Entra ID: 1 error, 1 warning');
  assert.equal(formatFindings([], { target: 'vault' }), 'PASS for Vault (cap/jwt): 0 warnings\n');
});
