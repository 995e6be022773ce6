import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { FakeClock, makeCa, issueServerCert } from '@ztwim/testkit';
import { startOidcProvider } from './provider.ts';
import { StaticJwksSource } from './jwks-source.ts';
import type { ServingCert } from './serving-cert.ts';
import { get } from './testing/http.ts';
import { makeKey } from './testing/keys.ts';

test('servingCertFile: TLS with the files; rotated files are served to new connections after one sync', async () => {
  const ca = makeCa();
  const first = issueServerCert(ca, 'first', ['localhost', 'oidc.example.org']);
  const second = issueServerCert(ca, 'second', ['localhost', 'oidc.example.org']);
  const other = makeCa(undefined, 'other ca');
  const certPath = join(ca.dir, 'tls.crt');
  const keyPath = join(ca.dir, 'tls.key');
  copyFileSync(first.certPath, certPath);
  copyFileSync(first.keyPath, keyPath);
  const clock = new FakeClock();
  const loaded: ServingCert[] = [];
  const p = await startOidcProvider(
    {
      domains: ['localhost'],
      jwtIssuer: 'https://localhost',
      servingCertFile: { certFilePath: certPath, keyFilePath: keyPath, addr: '127.0.0.1:0', fileSyncIntervalMs: 30_000 },
    },
    {
      source: new StaticJwksSource([makeKey('ec-p256').publicJwk]),
      clock,
      onCertificate: (c) => {
        loaded.push(c);
      },
    },
  );
  try {
    const fp1 = new X509Certificate(first.certPem).fingerprint256;
    const fp2 = new X509Certificate(second.certPem).fingerprint256;
    const url = `${p.urls.https}/.well-known/openid-configuration`;
    let r = await get(url, { ca: ca.certPem, headers: { host: 'localhost' } });
    assert.equal(r.status, 200);
    assert.equal(r.peerFingerprint256, fp1);
    assert.equal((JSON.parse(r.body) as { issuer: string }).issuer, 'https://localhost');
    // An untrusting client fails the handshake.
    await assert.rejects(get(url, { ca: other.certPem }), /self-signed|unable to verify|certificate/i);

    // Rotate: a half-written pair (new cert, old key) is not taken.
    copyFileSync(second.certPath, certPath);
    await clock.waitForTimers(1);
    clock.advance(30_000);
    await clock.waitForTimers(1); // the sync ran and re-armed its timer
    assert.equal(loaded.length, 1);
    r = await get(url, { ca: ca.certPem, headers: { host: 'localhost' } });
    assert.equal(r.peerFingerprint256, fp1);
    // Finish the rotation: the next sync installs it.
    copyFileSync(second.keyPath, keyPath);
    clock.advance(30_000);
    await clock.waitForTimers(1);
    assert.equal(loaded.length, 2);
    assert.equal(p.servingCert()?.fingerprint256, fp2);
    r = await get(url, { ca: ca.certPem, headers: { host: 'localhost' } });
    assert.equal(r.status, 200);
    assert.equal(r.peerFingerprint256, fp2);

    // Garbage in the files keeps the current certificate.
    writeFileSync(certPath, 'not a certificate');
    await clock.waitForTimers(1);
    clock.advance(30_000);
    await clock.waitForTimers(1);
    assert.equal(loaded.length, 2);
    r = await get(url, { ca: ca.certPem, headers: { host: 'localhost' } });
    assert.equal(r.peerFingerprint256, fp2);
  } finally {
    await p.close();
  }
});

test('servingCertFile: unusable files at start are an error naming the problem', async () => {
  const ca = makeCa();
  const a = issueServerCert(ca, 'a');
  const b = issueServerCert(ca, 'b');
  await assert.rejects(
    startOidcProvider(
      { domains: ['localhost'], servingCertFile: { certFilePath: a.certPath, keyFilePath: b.keyPath, addr: '127.0.0.1:0' } },
      { source: new StaticJwksSource([]) },
    ),
    /serving certificate: .*(mismatch|key values)/i,
  );
  await assert.rejects(
    startOidcProvider(
      { domains: ['localhost'], servingCertFile: { certFilePath: join(ca.dir, 'missing.pem'), keyFilePath: b.keyPath, addr: '127.0.0.1:0' } },
      { source: new StaticJwksSource([]) },
    ),
    /servingCertFile: cannot read certificate files/,
  );
});
