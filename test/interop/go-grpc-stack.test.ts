// Proves our gRPC stack (connect-node server + @ztwim/proto generated descriptors) against
// grpc-go and go-spiffe over a Unix socket: a tiny Workload API fixture (not the real agent)
// answers go-spiffe's workloadapi client and raw grpc-go calls made by test/interop/go/grpcstack.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { KeyObject, webcrypto } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError, createContextKey, createContextValues, type ConnectRouter, type Interceptor } from '@connectrpc/connect';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import {
  HealthCheckResponse_ServingStatus,
  HealthService,
  PermissionDeniedDetails_Reason,
  permissionDeniedError,
  SpiffeWorkloadAPI,
  startGrpcServer,
  type GrpcServer,
} from '@ztwim/proto';
import { goBuild, INTEROP_DIR } from './lib/peers.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const TD_ID = 'spiffe://example.org';
const WORKLOAD_ID = 'spiffe://example.org/workload';
const AUDIENCE = 'interop-audience';
const KID = 'ztwim-interop-key-1';
// grpc-message is percent-encoded on the wire; non-ASCII, '%' and newlines must survive.
const ODD_MESSAGE = 'failed to convert entry: 100% \u00fcber\nline two "quoted"';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

interface Issued {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
  certPem: string;
  keyPem: string;
}

/** A CA or an X509-SVID-shaped leaf (CA false, digitalSignature, one URI SAN). */
async function issue(subject: string, ca?: Issued, uri?: string): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const extensions: x509.Extension[] =
    ca === undefined
      ? [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ]
      : [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)];
  if (ca === undefined) extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org' }]));
  if (uri !== undefined) extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0' + Math.floor(Math.random() * 1e12).toString(16),
    subject,
    issuer: ca?.cert.subject ?? subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    publicKey: keys.publicKey,
    signingKey: ca?.keys.privateKey ?? keys.privateKey,
    signingAlgorithm: EC,
    extensions,
  });
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { cert, keys, certPem: cert.toString('pem'), keyPem };
}

const peerKey = createContextKey<string>('unknown');

interface GoReport {
  bundleTrustDomains: string[];
  bundleKeyIds: string[];
  svidId: string;
  svidAudience: string[];
  svidHint: string;
  validatedId: string;
  noHeaderCode: string;
  noHeaderMessage: string;
  deniedCode: string;
  deniedReason: string;
  oddCode: string;
  oddMessage: string;
  streamMessages: number;
  streamCancelCode: string;
  healthStatus: string;
  unimplementedCode: string;
  tlsHealthStatus: string;
  tlsPeerWithCert: string;
  tlsPeerAnonymous: string;
}

/** The Workload API security header check, as SPIRE's agent middleware does it. */
const requireSecurityHeader: Interceptor = (next) => async (req) => {
  if (req.service.typeName === 'SpiffeWorkloadAPI' && req.header.get('workload.spiffe.io') !== 'true') {
    throw new ConnectError('security header missing from request', Code.InvalidArgument);
  }
  return next(req);
};

function runGo(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

describe('grpc-go / go-spiffe against a connect-node server (unix socket, and TCP+TLS)', () => {
  let tmp: TmpDir;
  let server: GrpcServer;
  let tlsServer: GrpcServer;
  let socket: string;
  let goBin: string;
  const jwtRequests: string[][] = [];
  let bundleStreamsEnded = 0;
  let resolveBothEnded!: () => void;
  const bothBundleStreamsEnded = new Promise<void>((r) => {
    resolveBothEnded = r;
  });

  before(async () => {
    // Build first (fails the suite, never skips, when Go is missing).
    goBin = goBuild(join(INTEROP_DIR, 'go'), './grpcstack');
    tmp = makeTmpDir();
    socket = tmp.file('workload.sock');
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const jwks = new TextEncoder().encode(JSON.stringify({ keys: [{ ...jwk, kid: KID }] }));
    const routes = (router: ConnectRouter): void => {
      router.service(SpiffeWorkloadAPI, {
        async fetchJWTSVID(req, ctx) {
          if (req.audience.includes('tls')) return { svids: [{ spiffeId: WORKLOAD_ID, svid: 'x', hint: ctx.values.get(peerKey) }] };
          jwtRequests.push([...req.audience]);
          if (req.audience.includes('odd-message')) throw new ConnectError(ODD_MESSAGE, Code.FailedPrecondition);
          if (req.audience.includes('denied')) {
            throw permissionDeniedError('no identity issued', PermissionDeniedDetails_Reason.AGENT_BANNED);
          }
          const token = await new SignJWT({})
            .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
            .setSubject(WORKLOAD_ID)
            .setAudience(req.audience)
            .setIssuedAt()
            .setExpirationTime('5m')
            .sign(privateKey);
          return { svids: [{ spiffeId: WORKLOAD_ID, svid: token, hint: ctx.values.get(peerKey) }] };
        },
        async *fetchJWTBundles(_req, ctx) {
          try {
            yield { bundles: { [TD_ID]: jwks } };
            yield { bundles: { [TD_ID]: jwks } };
            await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
          } finally {
            if (++bundleStreamsEnded === 2) resolveBothEnded();
          }
        },
      });
      router.service(HealthService, { check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }) });
    };
    server = await startGrpcServer({
      routes,
      listen: { path: socket, mode: 0o777 },
      interceptors: [requireSecurityHeader],
      contextValues: () => createContextValues().set(peerKey, 'unix'),
    });
    // The same services over TCP + TLS, SPIRE-server style: client certificate requested, not required.
    const ca = await issue('CN=interop ca');
    const srv = await issue('O=SPIRE', ca, 'spiffe://example.org/spire/server');
    const agent = await issue('O=SPIRE', ca, 'spiffe://example.org/spire/agent/join_token/interop');
    tmp.write('ca.pem', ca.certPem);
    tmp.write('client.pem', agent.certPem);
    tmp.write('client.key', agent.keyPem);
    tlsServer = await startGrpcServer({
      routes,
      listen: { host: '127.0.0.1', port: 0, tls: { cert: srv.certPem, key: srv.keyPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: false } },
      interceptors: [requireSecurityHeader],
      contextValues: (req) => {
        const sock = req.socket as TLSSocket;
        const san = sock.getPeerCertificate().subjectaltname;
        return createContextValues().set(peerKey, san === undefined ? 'anonymous' : `${sock.authorized ? 'verified' : 'unverified'} ${san}`);
      },
    });
  });

  after(async () => {
    await server?.close({ graceMs: 1000 });
    await tlsServer?.close({ graceMs: 1000 });
    tmp?.cleanup();
  });

  it('go-spiffe and raw grpc-go calls behave as against SPIRE', async () => {
    const addr = tlsServer.address;
    assert.equal(addr.kind, 'tcp');
    const tlsAddr = addr.kind === 'tcp' ? `${addr.host}:${addr.port}` : '';
    const out = await runGo(goBin, ['-socket', socket, '-audience', AUDIENCE, '-tls-addr', tlsAddr, '-tls-dir', tmp.path]);
    const r = JSON.parse(out) as GoReport;
    // go-spiffe workloadapi client: JWKS parsed, token parsed and fully validated.
    assert.deepEqual(r.bundleTrustDomains, [TD_ID]);
    assert.deepEqual(r.bundleKeyIds, [KID]);
    assert.equal(r.svidId, WORKLOAD_ID);
    assert.deepEqual(r.svidAudience, [AUDIENCE]);
    assert.equal(r.svidHint, 'unix');
    assert.equal(r.validatedId, WORKLOAD_ID);
    // Raw grpc-go call without the security header.
    assert.equal(r.noHeaderCode, 'InvalidArgument');
    assert.equal(r.noHeaderMessage, 'security header missing from request');
    // grpc-status-details-bin decoded by grpc-go into spire-api-sdk types.
    assert.equal(r.deniedCode, 'PermissionDenied');
    assert.equal(r.deniedReason, 'AGENT_BANNED');
    assert.equal(r.oddCode, 'FailedPrecondition');
    assert.equal(r.oddMessage, ODD_MESSAGE);
    // Server stream: two messages, then the Go client cancels.
    assert.equal(r.streamMessages, 2);
    assert.equal(r.streamCancelCode, 'Canceled');
    assert.equal(r.healthStatus, 'SERVING');
    assert.equal(r.unimplementedCode, 'Unimplemented');
    // grpc-go over TLS (ALPN h2 enforced by grpc-go), go-spiffe tlsconfig like a SPIRE agent.
    assert.equal(r.tlsHealthStatus, 'SERVING');
    assert.equal(r.tlsPeerWithCert, 'verified URI:spiffe://example.org/spire/agent/join_token/interop');
    assert.equal(r.tlsPeerAnonymous, 'anonymous');
    // The header-less call never reached the handler; go-spiffe's and the denied one did.
    assert.deepEqual(jwtRequests, [[AUDIENCE], ['denied'], ['odd-message']]);
  });

  it('the server saw both bundle streams end when go cancelled them', async () => {
    // go-spiffe's FetchJWTBundles stream + the raw stream; both ended by client cancellation.
    await bothBundleStreamsEnded; // the test times out if a handler never sees the cancel
    assert.equal(bundleStreamsEnded, 2);
  });
});
