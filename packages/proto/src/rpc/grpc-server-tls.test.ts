import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { Code, ConnectError, createClient, createContextKey, createContextValues } from '@connectrpc/connect';
import { Health, HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health_pb.ts';
import { createTcpGrpcTransport } from './client-transport.ts';
import { startGrpcServer } from './grpc-server.ts';
import { issue } from './test-pki.ts';

const peerKey = createContextKey<string>('none');

test('tcp + TLS: ALPN h2, optional client certificate visible to handlers', async () => {
  const ca = await issue('CN=test ca', { isCa: true });
  const serverCert = await issue('CN=server', { ca, sans: [{ type: 'url', value: 'spiffe://example.org/spire/server' }] });
  const clientCert = await issue('CN=agent', { ca, sans: [{ type: 'url', value: 'spiffe://example.org/spire/agent/x' }] });

  const server = await startGrpcServer({
    listen: {
      host: '127.0.0.1',
      port: 0,
      // SPIRE server style: client certificate requested, not required.
      tls: { key: serverCert.keyPem, cert: serverCert.certPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: false },
    },
    contextValues: (conn) => {
      const sock = conn.socket as TLSSocket;
      const peer = sock.getPeerCertificate();
      const who = peer.subjectaltname ?? 'anonymous';
      return createContextValues().set(peerKey, `${sock.alpnProtocol === false ? '-' : sock.alpnProtocol} ${sock.authorized ? 'ok' : 'unverified'} ${who}`);
    },
    routes: (router) => {
      router.service(Health, {
        check: (req, ctx) => {
          if (req.service !== '') throw new ConnectError(ctx.values.get(peerKey), Code.NotFound);
          return { status: HealthCheckResponse_ServingStatus.SERVING };
        },
      });
    },
  });
  const addr = server.address;
  assert.equal(addr.kind, 'tcp');
  if (addr.kind !== 'tcp') return;
  // No hostname check (as SPIRE agents); the chain must still verify to the CA.
  const common = { ca: [ca.certPem], checkServerIdentity: () => undefined };
  const withCert = createTcpGrpcTransport({ host: addr.host, port: addr.port, tls: { ...common, cert: clientCert.certPem, key: clientCert.keyPem } });
  const anonymous = createTcpGrpcTransport({ host: addr.host, port: addr.port, tls: common });
  const untrusting = createTcpGrpcTransport({ host: addr.host, port: addr.port, tls: { ca: [clientCert.certPem], checkServerIdentity: () => undefined } });
  const whoAmI = async (t: typeof withCert): Promise<string> => {
    const e = await createClient(Health, t)
      .check({ service: 'who' })
      .catch((err: unknown) => err);
    assert.ok(e instanceof ConnectError);
    return e.rawMessage;
  };
  try {
    assert.equal((await createClient(Health, withCert).check({})).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(await whoAmI(withCert), 'h2 ok URI:spiffe://example.org/spire/agent/x');
    assert.equal(await whoAmI(anonymous), 'h2 unverified anonymous');
    // Quirk: connect-node reports a failed TLS handshake as Internal (grpc-go says Unavailable).
    await assert.rejects(
      createClient(Health, untrusting).check({}),
      (e: unknown) => e instanceof ConnectError && e.code === Code.Internal && /self-signed certificate/.test(e.rawMessage),
    );
  } finally {
    withCert.close();
    anonymous.close();
    untrusting.close();
    await server.close();
  }
});
