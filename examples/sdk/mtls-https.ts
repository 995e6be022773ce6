// mTLS over node:https with X509-SVIDs from the Workload API: the server accepts only the client
// SPIFFE IDs its authorizer allows, the client accepts only the server SPIFFE IDs its authorizer
// allows; both check the peer as an X509-SVID against the bundle of its trust domain.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock npx tsx mtls-https.ts
//
// One process plays both sides with its own SVID, so the authorized ID is its own; between two
// workloads, name the peer instead: authorizeId('spiffe://example.org/ns/web/sa/frontend').
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SpiffeId, X509Source, authorizeId, enforceMtls, isSpiffeError, tlsClientOptions, tlsServerOptions } from '@ztwim/spiffe';
import type { Authorizer } from '@ztwim/spiffe';

const source = await X509Source.create(); // SPIFFE_ENDPOINT_SOCKET; follows SVID rotation
const me = source.getX509Svid().id;

// Server: present our SVID, require a client SVID, and let only `me` in. enforceMtls verifies
// each client before the request handler sees it and records the client's ID on the socket.
const server = https.createServer(tlsServerOptions(source), (req, res) => {
  const client = (req.socket as TLSSocket & { spiffeId?: SpiffeId }).spiffeId;
  res.end(`hello ${String(client)}`);
});
enforceMtls(server, source, authorizeId(me));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
console.log(`server ${me.toString()} on https://127.0.0.1:${port}`);

// Client: tlsClientOptions per request (it picks up the current SVID); `agent: false` so that a
// TLS session resumed from another authorizer's connection cannot skip the server check.
function get(authorizer: Authorizer): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', agent: false, ...tlsClientOptions(source, authorizer) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.on('error', reject);
    req.end();
  });
}

try {
  console.log(`client got: ${await get(authorizeId(me))}`);
  // A client that expects another server refuses this one before it sends the request.
  const other = SpiffeId.fromPath(me.trustDomain, '/ns/other/sa/db');
  try {
    await get(authorizeId(other));
    throw new Error(`the client accepted a server that is not ${other.toString()}`);
  } catch (e) {
    if (!isSpiffeError(e, 'ERR_AUTHORIZATION')) throw e;
    console.log(`client refused the server: ${e.message}`);
  }
} finally {
  server.close();
  await source.close();
}
