/**
 * mTLS with X509-SVIDs (go-spiffe `tlsconfig.MTLSServerConfig` / `MTLSClientConfig`) for
 * node:tls, https and http2.
 *
 * Peers are verified twice, both fail-closed before application data is handed over:
 * OpenSSL checks the chain against the union of the source's bundle authorities
 * (`rejectUnauthorized: true`), then `verifyX509Svid` checks it as an X509-SVID against the
 * bundle of the peer's trust domain and the authorizer decides on the SPIFFE ID. On clients
 * this runs in `checkServerIdentity` (before 'secureConnect'); on servers in a
 * 'secureConnection' listener installed first by `enforceMtls` (or `createMtlsServer`).
 * Hostnames are never checked.
 */
import * as tls from 'node:tls';
import type { PeerCertificate, DetailedPeerCertificate } from 'node:tls';
import { SpiffeError } from '../errors.ts';
import { derToPem } from '../internal/pem.ts';
import type { X509BundleSource } from '../bundle/source.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import type { SpiffeId } from '../id/spiffe-id.ts';
import { verifyX509Svid } from '../svid/verify.ts';
import type { Authorizer } from './authorizer.ts';

/** What the TLS helpers need from an X509Source (X509Source implements all of it). */
export interface X509SvidSource extends X509BundleSource {
  getX509Svid(): X509Svid;
  /** Rotation notifications; `createMtlsServer` refreshes its default context on each. */
  onUpdate?(cb: () => void): () => void;
}

/**
 * Optional: the authorities of every trust domain the source knows, handed to OpenSSL as its CA
 * list (federation). Without it only the bundle of the SVID's own trust domain is used.
 */
export interface BundleAuthorities {
  allAuthorities?(): Uint8Array[];
}

export interface MtlsOptions {
  /** Verification time (default now). */
  readonly now?: () => Date;
}

function svidCredentials(source: X509SvidSource & BundleAuthorities): { key: string; cert: string; ca: string[] } {
  const svid = source.getX509Svid();
  const ca = (source.allAuthorities?.() ?? source.getX509BundleForTrustDomain(svid.id.trustDomain).authorities()).map((d) => derToPem(d, 'CERTIFICATE'));
  return {
    key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    cert: svid.certificates.map((d) => derToPem(d, 'CERTIFICATE')).join(''),
    ca,
  };
}

/** The peer chain (leaf first) as DER from a detailed peer certificate. */
export function peerChain(cert: PeerCertificate | DetailedPeerCertificate | undefined): Uint8Array[] {
  const out: Uint8Array[] = [];
  let c = cert as DetailedPeerCertificate | undefined;
  const seen = new Set<DetailedPeerCertificate>();
  while (c !== undefined && c !== null && c.raw !== undefined && !seen.has(c)) {
    seen.add(c);
    out.push(new Uint8Array(c.raw));
    const next = c.issuerCertificate;
    if (next === undefined || next === c || next.raw === undefined || next.raw.equals(c.raw)) break;
    c = next;
  }
  return out;
}

/**
 * Verifies a peer chain as an X509-SVID and authorizes its ID. The chain OpenSSL returns may
 * end with the trusted root; it is dropped before SPIFFE verification when it is a bundle authority.
 */
export function authorizePeer(chain: readonly Uint8Array[], bundles: X509BundleSource, authorizer: Authorizer, now: Date = new Date()): SpiffeId {
  if (chain.length === 0) throw new SpiffeError('ERR_AUTHORIZATION', 'tls: peer presented no certificate');
  const v = verifyX509Svid(chain, bundles, { now });
  authorizer(v.id, v.verifiedChains);
  return v.id;
}

export interface MtlsServerOptions extends tls.TlsOptions {
  SNICallback: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;
}

/**
 * Options for `tls.createServer` / `https.createServer` / `http2.createSecureServer`: present the
 * source's current SVID (a fresh SecureContext per handshake through SNICallback; the default
 * context at creation time for clients without SNI), require a client certificate trusted by the
 * source's bundles.
 *
 * Options alone cannot run the SPIFFE check (node has no verify hook): call
 * `enforceMtls(server, source, authorizer)` on the created server, or use `createMtlsServer`,
 * which does that and also refreshes the default context on rotation. `authorizer` is accepted
 * for symmetry with `tlsClientOptions` and is not used here.
 */
export function tlsServerOptions(source: X509SvidSource & BundleAuthorities, authorizer?: Authorizer): MtlsServerOptions {
  void authorizer;
  const creds = svidCredentials(source);
  return {
    ...creds,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    SNICallback: (_name, cb) => {
      try {
        cb(null, tls.createSecureContext({ ...svidCredentials(source), minVersion: 'TLSv1.2' }));
      } catch (e) {
        cb(e as Error);
      }
    },
  };
}

/**
 * Makes `server` verify every client as an X509-SVID and apply `authorizer` before any other
 * 'secureConnection' listener runs; refused sockets are destroyed at once (listeners added by
 * the caller still run for them: skip sockets with `destroyed` set, as `createMtlsServer` does).
 */
export function enforceMtls(server: tls.Server, source: X509BundleSource, authorizer: Authorizer, opts: MtlsOptions = {}): void {
  server.prependListener('secureConnection', (socket: tls.TLSSocket) => {
    try {
      if (!socket.authorized) throw new SpiffeError('ERR_AUTHORIZATION', `tls: client certificate not trusted: ${String(socket.authorizationError)}`);
      const id = authorizePeer(peerChain(socket.getPeerCertificate(true)), source, authorizer, opts.now?.() ?? new Date());
      (socket as tls.TLSSocket & { spiffeId?: SpiffeId }).spiffeId = id;
    } catch (e) {
      socket.destroy(e as Error);
      server.emit('mtlsRefused', e, socket);
    }
  });
}

/**
 * Options for `tls.connect` / `https.request` / `http2.connect` presenting the source's current
 * SVID (call it per connection to pick up rotations) and accepting only an X509-SVID server
 * that `authorizer` allows. The server's hostname is not checked.
 *
 * Node skips `checkServerIdentity` on resumed TLS sessions: do not share a session cache
 * (e.g. one `https.Agent`) between connections that use different authorizers (`agent: false`
 * or one agent per authorizer).
 */
export function tlsClientOptions(source: X509SvidSource & BundleAuthorities, authorizer: Authorizer, opts: MtlsOptions = {}): tls.ConnectionOptions {
  const creds = svidCredentials(source);
  return {
    ...creds,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    checkServerIdentity: (_host, cert) => {
      try {
        authorizePeer(peerChain(cert), source, authorizer, opts.now?.() ?? new Date());
        return undefined;
      } catch (e) {
        return e as Error;
      }
    },
  };
}

/** A TLS server (node:tls) with SPIFFE mTLS; the default context follows SVID rotation. */
export function createMtlsServer(
  source: X509SvidSource & BundleAuthorities,
  authorizer: Authorizer,
  handler?: (socket: tls.TLSSocket) => void,
  opts: MtlsOptions = {},
): tls.Server {
  const server = tls.createServer(tlsServerOptions(source, authorizer));
  enforceMtls(server, source, authorizer, opts);
  // Every 'secureConnection' listener runs even after enforceMtls destroyed a refused socket:
  // the handler is only ever given sockets that passed.
  if (handler !== undefined)
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      if (!socket.destroyed) handler(socket);
    });
  const off = source.onUpdate?.(() => {
    try {
      server.setSecureContext({ ...svidCredentials(source), minVersion: 'TLSv1.2' });
    } catch {
      // keep the previous context
    }
  });
  server.once('close', () => off?.());
  return server;
}

/** Connects with SPIFFE mTLS; resolves once the server is verified and authorized. */
export function connectMtls(
  source: X509SvidSource & BundleAuthorities,
  authorizer: Authorizer,
  target: { host?: string; port: number },
  opts: MtlsOptions = {},
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...tlsClientOptions(source, authorizer, opts), host: target.host ?? '127.0.0.1', port: target.port });
    socket.once('secureConnect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
