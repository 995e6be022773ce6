import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { createLogger } from '@ztwim/core';
import { FakeClock, issueServerCert, makeCa } from '@ztwim/testkit';
import { AcmeCertManager } from './acme.ts';

function handshake(port: number, ALPNProtocols: string[]): Promise<{ alpn: string | false; ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols }, () => {
      resolve({ alpn: s.alpnProtocol ?? false, ok: true });
      s.end();
    });
    s.on('error', (e) => resolve({ alpn: false, ok: false, error: e.message }));
  });
}

test('tls-alpn-01 ALPN selection: http/1.1 for web clients, acme-tls/1 only for a pending challenge, h2-only refused', async () => {
  const ca = makeCa();
  const cert = issueServerCert(ca, 'endpoint');
  const mgr = new AcmeCertManager({
    directoryUrl: 'https://127.0.0.1:1/dir',
    email: 'ops@example.org',
    domains: ['localhost'],
    challenge: 'tls-alpn-01',
    cacheDir: '',
    renewFraction: 1 / 3,
    clock: new FakeClock(),
    logger: createLogger({ level: 'silent' }),
    onLoad: () => undefined,
  });
  const server = createServer({ cert: cert.certPem, key: cert.keyPem, ALPNCallback: mgr.tlsAlpnServerOptions().ALPNCallback }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    assert.deepEqual(await handshake(port, ['h2', 'http/1.1']), { alpn: 'http/1.1', ok: true });
    assert.deepEqual(await handshake(port, []), { alpn: false, ok: true }, 'no ALPN offered: served without');
    // No challenge pending: a validation client is not answered with the server's own certificate.
    const acme = await handshake(port, ['acme-tls/1']);
    assert.equal(acme.ok, false);
    assert.match(acme.error ?? '', /no application protocol/);
    const h2 = await handshake(port, ['h2']);
    assert.equal(h2.ok, false);
  } finally {
    mgr.close();
    server.close();
    rmSync(ca.dir, { recursive: true, force: true });
  }
});
