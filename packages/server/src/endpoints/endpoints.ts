import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createContextValues, type ConnectRouter, type Interceptor } from '@connectrpc/connect';
import { startGrpcServer, type GrpcServer } from '@ztwim/proto';
import type { Logger } from '@ztwim/core';
import { transportKey } from '../api/caller.ts';

/** 4 MiB: the largest request either endpoint accepts (oversized requests get ResourceExhausted). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** The admin API on a Unix socket: callers are local admins (socket 0770 in a 0750 directory). */
export async function startAdminEndpoint(opts: {
  socketPath: string;
  routes: (r: ConnectRouter) => void;
  interceptors: Interceptor[];
  log: Logger;
}): Promise<GrpcServer> {
  mkdirSync(dirname(opts.socketPath), { recursive: true, mode: 0o750 });
  return startGrpcServer({
    listen: { path: opts.socketPath, mode: 0o770 },
    routes: opts.routes,
    interceptors: opts.interceptors,
    readMaxBytes: MAX_REQUEST_BYTES,
    contextValues: () => createContextValues().set(transportKey, { kind: 'local' }),
    onConnectionError: (e) => opts.log.debug({ error: e.message }, 'Admin connection error'),
  });
}

export interface TlsMaterial {
  /** PEM chain (leaf first) and PEM private key of the server's own SVID. */
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * The agent-facing API on TCP with TLS (server SVID), ALPN h2. A client certificate is
 * requested but not required: attestation comes without one, later calls present the agent
 * SVID, which the authorization interceptor verifies against the trust bundle.
 */
export async function startTcpEndpoint(opts: {
  host: string;
  port: number;
  tls: TlsMaterial;
  routes: (r: ConnectRouter) => void;
  interceptors: Interceptor[];
  log: Logger;
}): Promise<GrpcServer & { rotate(tls: TlsMaterial): void }> {
  const server = await startGrpcServer({
    listen: {
      host: opts.host,
      port: opts.port,
      tls: {
        cert: opts.tls.certPem,
        key: opts.tls.keyPem,
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        ALPNProtocols: ['h2'],
      },
    },
    routes: opts.routes,
    interceptors: opts.interceptors,
    readMaxBytes: MAX_REQUEST_BYTES,
    contextValues: (conn) => {
      const sock = conn.socket as TLSSocket;
      const chain = peerChainOf(sock, conn.session);
      return createContextValues().set(transportKey, { kind: 'tls', peerChain: chain, remoteAddress: sock.remoteAddress ?? '' });
    },
    onConnectionError: (e) => opts.log.debug({ error: e.message }, 'TCP connection error'),
  });
  return {
    ...server,
    rotate(tls: TlsMaterial) {
      (server.httpServer as import('node:http2').Http2SecureServer).setSecureContext({ cert: tls.certPem, key: tls.keyPem });
    },
  };
}

/**
 * The chain a TLS peer presented (DER, leaf first, then the intermediates the peer sent that
 * Node links as issuers), read once per connection on TLS 1.3, where the handshake fixes the
 * peer certificate for the connection's life (no renegotiation). The authorization interceptor
 * still verifies the chain on every request. Read through the peer's X509Certificate
 * (getPeerX509Certificate and its issuerCertificate links), which gives the same certificates as
 * getPeerCertificate(true) without building that object (its fields and three fingerprints per
 * certificate) on every new connection.
 */
const peerChains = new WeakMap<object, readonly Uint8Array[]>();
function peerChainOf(sock: TLSSocket, connection: object): readonly Uint8Array[] {
  const hit = peerChains.get(connection);
  if (hit !== undefined) return hit;
  const chain = presentedChain(sock);
  if (typeof sock.getProtocol === 'function' && sock.getProtocol() === 'TLSv1.3') peerChains.set(connection, chain);
  return chain;
}

/**
 * The certificates a TLS peer presented, leaf first, as DER: the peer's certificate and its
 * issuer links, stopping at a certificate already in the chain (a self-issued one linked to
 * itself) so that no link can loop.
 */
export function presentedChain(sock: TLSSocket): Uint8Array[] {
  const chain: Uint8Array[] = [];
  const peer = typeof sock.getPeerX509Certificate === 'function' ? sock.getPeerX509Certificate() : undefined;
  for (let c = peer; c !== undefined; c = c.issuerCertificate) {
    const der = c.raw;
    if (chain.some((d) => der.equals(d))) break;
    chain.push(new Uint8Array(der));
  }
  return chain;
}
