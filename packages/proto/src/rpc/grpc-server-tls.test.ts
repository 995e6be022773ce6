import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyObject, webcrypto } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { Code, ConnectError, createClient, createContextKey, createContextValues } from '@connectrpc/connect';
import { Health, HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health_pb.ts';
import { createTcpGrpcTransport } from './client-transport.ts';
import { startGrpcServer } from './grpc-server.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

interface Issued { certPem: string; keyPem: string; cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }

async function issue(subject: string, opts: { ca?: Issued; isCa?: boolean; sans?: x509.JsonGeneralNames }): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(opts.isCa === true, undefined, true)];
  if (opts.sans) extensions.push(new x509.SubjectAlternativeNameExtension(opts.sans));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Math.floor(Math.random() * 1e9).toString(16).padStart(8, '1'),
    subject,
    issuer: opts.ca ? opts.ca.cert.subject : subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    publicKey: keys.publicKey,
    signingKey: opts.ca ? opts.ca.keys.privateKey : keys.privateKey,
    signingAlgorithm: alg,
    extensions,
  });
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem: cert.toString('pem'), keyPem, cert, keys };
}

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
    const e = await createClient(Health, t).check({ service: 'who' }).catch((err: unknown) => err);
    assert.ok(e instanceof ConnectError);
    return e.rawMessage;
  };
  try {
    assert.equal((await createClient(Health, withCert).check({})).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(await whoAmI(withCert), 'h2 ok URI:spiffe://example.org/spire/agent/x');
    assert.equal(await whoAmI(anonymous), 'h2 unverified anonymous');
    // Quirk: connect-node reports a failed TLS handshake as Internal (grpc-go says Unavailable).
    await assert.rejects(createClient(Health, untrusting).check({}), (e: unknown) => e instanceof ConnectError && e.code === Code.Internal && /self-signed certificate/.test(e.rawMessage));
  } finally {
    withCert.close();
    anonymous.close();
    untrusting.close();
    await server.close();
  }
});
