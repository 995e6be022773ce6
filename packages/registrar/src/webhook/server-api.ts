/**
 * What the webhook needs from the SPIRE Server API (ztwim server or spire-server, over the admin
 * socket): an X509-SVID for itself (SVID.MintX509SVID) and the trust bundle's X.509 roots
 * (Bundle.GetBundle), for its serving certificate and the webhooks' caBundle. The connection is
 * the CLI's: @ztwim/proto's Unix-socket gRPC transport with connect clients.
 */
import { createClient } from '@connectrpc/connect';
import { BundleService, SvidService, createUnixGrpcTransport } from '@ztwim/proto';
import { createSvidCsr, derToPem } from '@ztwim/spiffe';
import { internal } from '@ztwim/core';

export interface MintedSvid {
  /** Leaf first, PEM. */
  readonly certChainPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  readonly expiresAt: Date;
}

export interface WebhookServerApi {
  mintX509Svid(spiffeId: string, dnsNames: readonly string[], ttlSeconds: number): Promise<MintedSvid>;
  /** The trust bundle's X.509 authorities, PEM, in the server's order. */
  x509RootsPem(): Promise<string>;
  close(): void;
}

/** A WebhookServerApi over the server's admin socket. */
export function serverApiOverSocket(socketPath: string): WebhookServerApi {
  const transport = createUnixGrpcTransport(socketPath);
  const svid = createClient(SvidService, transport);
  const bundle = createClient(BundleService, transport);
  return {
    async mintX509Svid(spiffeId, dnsNames, ttlSeconds) {
      const { csr, pkcs8 } = await createSvidCsr(spiffeId, dnsNames);
      const resp = await svid.mintX509SVID({ csr, ttl: ttlSeconds });
      const chain = resp.svid?.certChain ?? [];
      if (chain.length === 0) throw internal('server response missing SVID chain');
      return {
        certChainPem: chain.map((c) => derToPem(c, 'CERTIFICATE')).join(''),
        keyPem: derToPem(pkcs8, 'PRIVATE KEY'),
        expiresAt: new Date(Number(resp.svid?.expiresAt ?? 0n) * 1000),
      };
    },
    async x509RootsPem() {
      const b = await bundle.getBundle({});
      return b.x509Authorities.map((a) => derToPem(a.asn1, 'CERTIFICATE')).join('');
    },
    close() {
      transport.close();
    },
  };
}
