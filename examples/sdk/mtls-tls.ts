// mTLS over raw node:tls sockets with X509-SVIDs: createMtlsServer verifies and authorizes each
// client before the connection handler runs (refused clients are cut off at once), connectMtls
// resolves once the server is verified and authorized.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock npx tsx mtls-tls.ts
//
// One process plays both sides with its own SVID; between two workloads the server names its
// clients (authorizeOneOf(...), authorizeMemberOf(td)) and the client names its server.
import type { AddressInfo } from 'node:net';
import type { Server, TLSSocket } from 'node:tls';
import { SpiffeId, X509Source, authorizeId, authorizeMemberOf, connectMtls, createMtlsServer } from '@ztwim/spiffe';
import type { Authorizer } from '@ztwim/spiffe';

const source = await X509Source.create();
const me = source.getX509Svid().id;

async function listen(authorizer: Authorizer): Promise<{ server: Server; port: number }> {
  const server = createMtlsServer(source, authorizer, (socket) => {
    const client = (socket as TLSSocket & { spiffeId?: SpiffeId }).spiffeId;
    socket.end(`hello ${String(client)}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Everything the server sends until it closes the connection. */
function readAll(socket: TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', () => {}); // a refused client sees a reset: reported as an empty reply
    socket.on('close', () => resolve(data));
  });
}

// Any workload of our trust domain may connect; the client accepts only `me` as its server.
const open = await listen(authorizeMemberOf(me.trustDomain));
// Only spiffe://<td>/ns/other/sa/db may connect here.
const closed = await listen(authorizeId(SpiffeId.fromPath(me.trustDomain, '/ns/other/sa/db')));
try {
  const reply = await readAll(await connectMtls(source, authorizeId(me), { port: open.port }));
  console.log(`member-of server replied: ${reply}`);
  const refused = await readAll(await connectMtls(source, authorizeId(me), { port: closed.port }));
  if (refused !== '') throw new Error(`the server let an unauthorized client in: ${refused}`);
  console.log('id-only server refused the client: connection closed without a reply');
} finally {
  open.server.close();
  closed.server.close();
  await source.close();
}
