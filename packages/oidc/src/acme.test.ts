import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { FakeClock, makeCa, makeTmpDir, issueServerCert, type TestCa } from '@ztwim/testkit';
import { startOidcProvider } from './provider.ts';
import { StaticJwksSource } from './jwks-source.ts';
import type { ServingCert } from './serving-cert.ts';
import { get } from './testing/http.ts';
import { makeKey } from './testing/keys.ts';

/** Ports that were free a moment ago (pebble needs them in its config file). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer();
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

let pebble: ChildProcess | undefined;
let pebbleLog = '';
let ca: TestCa;
let directoryUrl = '';
let managementUrl = '';
let challengePort = 0;

before(async () => {
  ca = makeCa();
  const listenerCert = issueServerCert(ca, 'pebble', ['localhost'], ['127.0.0.1']);
  const [acmePort, mgmtPort, httpPort, tlsPort] = await freePorts(4);
  challengePort = httpPort as number;
  const cfg = join(ca.dir, 'pebble.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: listenerCert.certPath,
        privateKey: listenerCert.keyPath,
        // Pebble's VA connects to <domain>:httpPort for http-01: our challenge responder.
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  managementUrl = `https://127.0.0.1:${mgmtPort}`;
  // No PEBBLE_VA_ALWAYS_VALID: pebble really fetches the http-01 token from us ("localhost"
  // resolves through /etc/hosts, so no DNS server is needed).
  const child = spawn('pebble', ['-config', cfg], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pebble = child;
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      pebbleLog += d.toString();
      if (pebbleLog.includes('ACME directory available')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (e) => reject(new Error(`cannot start pebble (apt-get install -y pebble): ${e.message}`)));
    child.once('exit', (code) => reject(new Error(`pebble exited with ${String(code)}: ${pebbleLog}`)));
  });
});

after(() => {
  if (pebble?.pid !== undefined && pebble.exitCode === null) pebble.kill('SIGTERM');
});

test('acme: obtains a certificate from pebble over http-01, serves it, renews it, reuses the cache', async () => {
  const root = await get(`${managementUrl}/roots/0`, { ca: ca.certPem });
  assert.equal(root.status, 200);
  const intermediate = await get(`${managementUrl}/intermediates/0`, { ca: ca.certPem });
  assert.equal(intermediate.status, 200);
  const trust = `${root.body}\n${intermediate.body}`;
  const cacheDir = makeTmpDir('ztwim-acme-cache-').path;
  const clock = new FakeClock(Date.now());
  const certs: ServingCert[] = [];
  let onCert: (() => void) | undefined;
  const cfg = {
    domains: ['localhost'],
    jwtIssuer: 'https://localhost',
    acme: {
      directoryUrl,
      email: 'ops@example.org',
      tosAccepted: true,
      cacheDir,
      addr: '127.0.0.1:0',
      httpChallengeAddr: `127.0.0.1:${challengePort}`,
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
    assert.match(pebbleLog, new RegExp(`validate w/ HTTP: http://localhost:${challengePort}/\\.well-known/acme-challenge/`));
    assert.match(pebbleLog, /set VALID by completed challenge/);
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
  pebble?.kill('SIGTERM');
  await new Promise<void>((resolve) => {
    if (pebble?.exitCode !== null) resolve();
    else pebble.once('exit', () => resolve());
  });
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
