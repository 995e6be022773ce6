// presentedChain reads what a TLS client presented on the server side: the leaf and the
// intermediates the client sent, which the peer verifier needs when the bundle holds only the root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { makeCa, opensslCert, tempDir } from '@ztwim/testkit';
import { presentedChain } from './endpoints.ts';

const derOf = (pem: string): Uint8Array => new Uint8Array(new X509Certificate(pem).raw);

function pki() {
  const dir = tempDir();
  const root = makeCa(dir, 'presented root');
  const int = opensslCert({
    dir,
    file: 'int',
    subject: '/CN=presented intermediate',
    days: 1,
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign'],
    issuer: root,
  });
  const leaf = opensslCert({
    dir,
    file: 'leaf',
    subject: '/CN=presented leaf',
    days: 1,
    extensions: ['subjectAltName=URI:spiffe://example.org/spire/agent/join_token/t', 'keyUsage=critical,digitalSignature'],
    issuer: int,
  });
  return { root, int, leaf };
}

/** What presentedChain returns on the server for a client presenting `certPem`, over `version`. */
async function chainSeen(certPem: string, keyPem: string, serverCert: { certPem: string; keyPem: string }, version: tls.SecureVersion): Promise<Uint8Array[]> {
  const server = tls.createServer({
    cert: serverCert.certPem,
    key: serverCert.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: version,
    maxVersion: version,
  });
  const seen = once(server, 'secureConnection').then((args) => {
    const sock = args[0] as tls.TLSSocket;
    const chain = presentedChain(sock);
    sock.end();
    return chain;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = tls.connect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    cert: certPem,
    key: keyPem,
    rejectUnauthorized: false,
    minVersion: version,
    maxVersion: version,
  });
  client.on('error', () => undefined);
  client.resume();
  try {
    return await seen;
  } finally {
    client.destroy();
    server.close();
  }
}

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  test(`${version}: the leaf and the intermediate the client sent, leaf first`, async () => {
    const { int, leaf } = pki();
    const chain = await chainSeen(leaf.certPem + int.certPem, leaf.keyPem, leaf, version);
    assert.deepEqual(
      chain,
      [leaf.certDer, int.certDer].map((d) => new Uint8Array(d)),
    );
  });

  test(`${version}: a root sent along ends the chain once (a self-signed certificate does not loop)`, async () => {
    const { root, int, leaf } = pki();
    const chain = await chainSeen(leaf.certPem + int.certPem + root.certPem, leaf.keyPem, leaf, version);
    assert.deepEqual(
      chain,
      [leaf.certDer, int.certDer, derOf(root.certPem)].map((d) => new Uint8Array(d)),
    );
  });

  test(`${version}: a leaf alone is a chain of one`, async () => {
    const { leaf } = pki();
    const chain = await chainSeen(leaf.certPem, leaf.keyPem, leaf, version);
    assert.deepEqual(chain, [new Uint8Array(leaf.certDer)]);
  });
}
