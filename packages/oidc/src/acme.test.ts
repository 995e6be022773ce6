import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { FakeClock, makeCa, issueServerCert, tempDir, type TestCa } from '@ztwim/testkit';
import { startOidcProvider } from './provider.ts';
import { StaticJwksSource } from './jwks-source.ts';
import type { ServingCert } from '@ztwim/acme';
import { startPebble, type Pebble } from '@ztwim/acme/testing';
import { get } from './testing/http.ts';
import { makeKey } from './testing/keys.ts';

let pebble: Pebble;
let ca: TestCa;

before(async () => {
  ca = makeCa();
  const listenerCert = issueServerCert(ca, 'pebble', ['localhost'], ['127.0.0.1']);
  // Pebble's VA connects to <domain>:httpPort for http-01: our challenge responder.
  pebble = await startPebble({ dir: ca.dir, listenerCertPath: listenerCert.certPath, listenerKeyPath: listenerCert.keyPath, listenerCaPem: ca.certPem });
});

after(async () => {
  await pebble?.stop();
});

test('acme: obtains a certificate from pebble over http-01, serves it, renews it, reuses the cache', async () => {
  const trust = await pebble.issuerPem();
  const cacheDir = tempDir('ztwim-acme-cache-');
  const clock = new FakeClock(Date.now());
  const certs: ServingCert[] = [];
  let onCert: (() => void) | undefined;
  const cfg = {
    domains: ['localhost'],
    jwtIssuer: 'https://localhost',
    acme: {
      directoryUrl: pebble.directoryUrl,
      email: 'ops@example.org',
      tosAccepted: true,
      cacheDir,
      addr: '127.0.0.1:0',
      httpChallengeAddr: `127.0.0.1:${pebble.httpPort}`,
      directoryCaPem: ca.certPem,
    },
  };
  const source = new StaticJwksSource([makeKey('ec-p256').publicJwk]);
  const p = await startOidcProvider(cfg, {
    source,
    clock,
    onCertificate: (c) => {
      certs.push(c);
      onCert?.();
    },
  });
  let firstFp: string;
  try {
    assert.equal(certs.length, 1);
    const leaf = new X509Certificate(certs[0]?.certPem as string);
    firstFp = leaf.fingerprint256;
    assert.match(leaf.subjectAltName ?? '', /DNS:localhost/);
    assert.match(leaf.issuer, /Pebble Intermediate CA/);
    // Pebble really fetched the token from our http-01 responder.
    assert.match(pebble.log(), new RegExp(`validate w/ HTTP: http://localhost:${pebble.httpPort}/\\.well-known/acme-challenge/`));
    assert.match(pebble.log(), /set VALID by completed challenge/);
    const url = `${p.urls.https}/.well-known/openid-configuration`;
    const r = await get(url, { ca: trust, servername: 'localhost', headers: { host: 'localhost' } });
    assert.equal(r.status, 200);
    assert.equal(r.peerFingerprint256, firstFp);
    assert.equal((JSON.parse(r.body) as { issuer: string }).issuer, 'https://localhost');
    // The challenge responder never redirects and answers nothing else.
    const other = await get(`${p.urls.acmeHttp}/keys`);
    assert.equal(other.status, 404);

    // Renewal: when 1/3 of the lifetime is left, a new certificate is obtained and served.
    const renewed = new Promise<void>((resolve) => {
      onCert = resolve;
    });
    const c0 = certs[0] as ServingCert;
    const renewAt = c0.notAfter.getTime() - (c0.notAfter.getTime() - c0.notBefore.getTime()) / 3;
    clock.set(renewAt);
    await renewed;
    assert.equal(certs.length, 2);
    const secondFp = new X509Certificate(certs[1]?.certPem as string).fingerprint256;
    assert.notEqual(secondFp, firstFp);
    const r2 = await get(url, { ca: trust, servername: 'localhost', headers: { host: 'localhost' } });
    assert.equal(r2.peerFingerprint256, secondFp);
    firstFp = secondFp;
  } finally {
    await p.close();
  }

  // Restart with the same cache and pebble gone: the cached certificate is served.
  await pebble.stop();
  const p2 = await startOidcProvider(cfg, { source, clock: new FakeClock(Date.now()) });
  try {
    const r = await get(`${p2.urls.https}/keys`, { ca: trust, servername: 'localhost' });
    assert.equal(r.status, 200);
    assert.equal(r.peerFingerprint256, firstFp);
  } finally {
    await p2.close();
  }
});

test('acme: a directory that does not answer ACME fails start with a clear error', async () => {
  const cert = issueServerCert(ca, 'not-acme');
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('no directory here');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await assert.rejects(
      startOidcProvider(
        {
          domains: ['localhost'],
          acme: {
            directoryUrl: `https://127.0.0.1:${port}/dir`,
            email: 'ops@example.org',
            tosAccepted: true,
            cacheDir: '',
            addr: '127.0.0.1:0',
            httpChallengeAddr: '127.0.0.1:0',
            directoryCaPem: ca.certPem,
          },
        },
        { source: new StaticJwksSource([]) },
      ),
      /acme: cannot obtain certificate: .*404/,
    );
  } finally {
    server.close();
  }
});
