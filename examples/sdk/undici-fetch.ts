// HTTP clients with SPIFFE mTLS: an undici Agent whose `connect` opens each connection with the
// SDK's TLS client options (current X509-SVID, server verified as an X509-SVID and authorized by
// SPIFFE ID), used by undici's `request` and `fetch`. The server is the node:https one from
// mtls-https.ts.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock npx tsx undici-fetch.ts
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { Agent, fetch, request } from 'undici';
import { SpiffeId, X509Source, authorizeId, authorizeMemberOf, enforceMtls, isSpiffeError, tlsClientOptions, tlsServerOptions } from '@ztwim/spiffe';
import type { Authorizer } from '@ztwim/spiffe';

const source = await X509Source.create();
const me = source.getX509Svid().id;

const server = https.createServer(tlsServerOptions(source), (req, res) => {
  const client = (req.socket as TLSSocket & { spiffeId?: SpiffeId }).spiffeId;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ client: String(client), path: req.url }));
});
enforceMtls(server, source, authorizeMemberOf(me.trustDomain));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

/**
 * An undici dispatcher for servers `authorizer` allows. `connect` as a function (not an options
 * object) so that every new connection presents the SVID current at that time, and so that
 * undici's TLS session cache, which would skip the server check on resumption, is not used.
 */
function spiffeAgent(authorizer: Authorizer): Agent {
  return new Agent({
    connect: (opts, callback) => {
      const socket = tls.connect({ ...tlsClientOptions(source, authorizer), host: opts.hostname, port: Number(opts.port), ALPNProtocols: ['http/1.1'] });
      socket.once('secureConnect', () => callback(null, socket));
      socket.once('error', (err) => callback(err, null));
    },
  });
}

const agent = spiffeAgent(authorizeId(me));
try {
  const r = await request(`${base}/request`, { dispatcher: agent });
  console.log(`undici.request: ${r.statusCode} ${await r.body.text()}`);

  const f = await fetch(`${base}/fetch`, { dispatcher: agent });
  console.log(`undici.fetch: ${f.status} ${JSON.stringify(await f.json())}`);

  // fetch against a server with another identity than the one expected fails before any request.
  const strict = spiffeAgent(authorizeId(SpiffeId.fromPath(me.trustDomain, '/ns/other/sa/api')));
  try {
    await fetch(`${base}/refused`, { dispatcher: strict });
    throw new Error('fetch accepted a server with an unexpected SPIFFE ID');
  } catch (e) {
    const cause = e instanceof Error ? e.cause : undefined;
    if (!isSpiffeError(cause, 'ERR_AUTHORIZATION')) throw e;
    console.log(`undici.fetch refused the server: ${cause.message}`);
  } finally {
    await strict.close();
  }
} finally {
  await agent.close();
  server.close();
  await source.close();
}
