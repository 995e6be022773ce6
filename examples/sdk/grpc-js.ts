// gRPC with SPIFFE mTLS on @grpc/grpc-js: server and channel credentials fed by an X509Source
// through grpc-js's CertificateProvider (so both sides pick up SVID rotations and bundle
// changes), the server authorizing each call by the caller's SPIFFE ID and the client accepting
// only the server SPIFFE ID it expects.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock npx tsx grpc-js.ts
//
// One process plays both sides with its own SVID; between two workloads each names the other.
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { SpiffeId, X509Source, authorizeId, authorizeMemberOf, authorizePeer, derToPem, isSpiffeError, peerChain, tlsClientOptions } from '@ztwim/spiffe';
import type { Authorizer } from '@ztwim/spiffe';

const source = await X509Source.create();
const me = source.getX509Svid().id;

/** grpc-js CertificateProvider over an X509Source: the current SVID and every trust domain's roots. */
class X509SourceCertificates implements grpc.experimental.CertificateProvider {
  readonly #ca = new Set<grpc.experimental.CaCertificateUpdateListener>();
  readonly #identity = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  readonly #source: X509Source;
  readonly #unsubscribe: () => void;
  constructor(source: X509Source) {
    this.#source = source;
    this.#unsubscribe = source.onUpdate(() => {
      for (const l of this.#ca) l(this.#caUpdate());
      for (const l of this.#identity) l(this.#identityUpdate());
    });
  }
  #caUpdate(): grpc.experimental.CaCertificateUpdate {
    return {
      caCertificate: Buffer.from(
        this.#source
          .allAuthorities()
          .map((d) => derToPem(d, 'CERTIFICATE'))
          .join(''),
      ),
    };
  }
  #identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    const { certificates, privateKey } = this.#source.getX509Svid().marshal();
    return { certificate: Buffer.from(certificates), privateKey: Buffer.from(privateKey) };
  }
  // The first update goes out on the next tick: grpc-js's server credentials subscribe before
  // they register the server that waits for it, so an update given synchronously would be lost.
  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.#ca.add(l);
    process.nextTick(() => this.#ca.has(l) && l(this.#caUpdate()));
  }
  removeCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.#ca.delete(l);
  }
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.#identity.add(l);
    process.nextTick(() => this.#identity.has(l) && l(this.#identityUpdate()));
  }
  removeIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.#identity.delete(l);
  }
  close(): void {
    this.#unsubscribe();
  }
}

// A unary method with JSON messages, so the example needs no .proto file.
interface Hello {
  greeting: string;
}
const toJson = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const fromJson = <T>(b: Buffer): T => JSON.parse(b.toString()) as T;
const WHO_AM_I = '/demo.Greeter/WhoAmI';
const greeter: grpc.ServiceDefinition = {
  WhoAmI: {
    path: WHO_AM_I,
    requestStream: false,
    responseStream: false,
    requestSerialize: toJson,
    requestDeserialize: fromJson,
    responseSerialize: toJson,
    responseDeserialize: fromJson,
  },
};

/**
 * The caller's SPIFFE ID, verified as an X509-SVID and allowed by `authorizer`. grpc-js hands
 * over the client's leaf certificate only (OpenSSL already verified the chain against the
 * bundles), so this check is complete when the agent issues SVIDs straight from a bundle
 * authority, as SPIRE and ztwim do without an UpstreamAuthority that adds intermediates.
 */
function callerId(call: grpc.ServerUnaryCall<unknown, unknown>, authorizer: Authorizer): SpiffeId {
  const cert: PeerCertificate | undefined = call.getAuthContext()?.sslPeerCertificate;
  return authorizePeer(peerChain(cert), source, authorizer);
}

const certificates = new X509SourceCertificates(source);
const server = new grpc.Server();
const allowed = authorizeMemberOf(me.trustDomain);
server.addService(greeter, {
  WhoAmI: (call: grpc.ServerUnaryCall<unknown, Hello>, callback: grpc.sendUnaryData<Hello>) => {
    try {
      callback(null, { greeting: `hello ${callerId(call, allowed).toString()}` });
    } catch (e) {
      callback({ code: grpc.status.PERMISSION_DENIED, details: e instanceof Error ? e.message : String(e) });
    }
  },
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('localhost:0', grpc.experimental.createCertificateProviderServerCredentials(certificates, certificates, true), (err, p) =>
    err === null ? resolve(p) : reject(err),
  ),
);
console.log(`grpc server ${me.toString()} on localhost:${port}`);

/** Channel credentials that present our SVID and accept only a server `authorizer` allows. */
function spiffeChannelCredentials(authorizer: Authorizer): grpc.ChannelCredentials {
  const { checkServerIdentity } = tlsClientOptions(source, authorizer);
  return grpc.experimental.createCertificateProviderChannelCredentials(certificates, certificates, {
    checkServerIdentity: (host, cert) => checkServerIdentity?.(host, cert),
  });
}

function whoAmI(client: grpc.Client): Promise<Hello> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(WHO_AM_I, toJson, fromJson<Hello>, {}, (err, res) => (err === null && res !== undefined ? resolve(res) : reject(err))),
  );
}

const client = new grpc.Client(`localhost:${port}`, spiffeChannelCredentials(authorizeId(me)));
const wrongServer = new grpc.Client(`localhost:${port}`, spiffeChannelCredentials(authorizeId(SpiffeId.fromPath(me.trustDomain, '/ns/other/sa/db'))));
try {
  console.log(`grpc reply: ${(await whoAmI(client)).greeting}`);
  try {
    await whoAmI(wrongServer);
    throw new Error('the channel accepted a server with an unexpected SPIFFE ID');
  } catch (e) {
    if (isSpiffeError(e)) throw e;
    const status = e as grpc.ServiceError;
    if (status.code !== grpc.status.UNAVAILABLE) throw e;
    console.log(`grpc channel refused the server: UNAVAILABLE ${status.details}`);
  }
} finally {
  client.close();
  wrongServer.close();
  server.forceShutdown();
  certificates.close();
  await source.close();
}
