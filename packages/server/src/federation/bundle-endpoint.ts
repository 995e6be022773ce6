import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenTcp, type Logger } from '@ztwim/core';

export interface BundleEndpointTls {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Bounds that keep slow or idle clients from holding the endpoint open. */
export interface BundleEndpointLimits {
  /** TLS handshake (SPIRE: none below Go's defaults; ReadHeaderTimeout 10 s). */
  readonly handshakeTimeoutMs: number;
  /** Whole request head (a slow loris sending one header byte at a time is cut here). */
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Idle keep-alive connections. */
  readonly keepAliveTimeoutMs: number;
  /** Open connections at once; more are refused. */
  readonly maxConnections: number;
  /** How often header/request timeouts are checked (node's default, 30 s, let a loris stay that long). */
  readonly checkIntervalMs: number;
}

export const BUNDLE_ENDPOINT_LIMITS: BundleEndpointLimits = {
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1024,
  checkIntervalMs: 1_000,
};

export interface BundleEndpointOptions {
  readonly host: string;
  readonly port: number;
  /** undefined: no certificate yet (ACME obtains one through this endpoint; rotate() installs it). */
  readonly tls: BundleEndpointTls | undefined;
  /** Chooses the ALPN protocol and may set the socket's certificate (ACME tls-alpn-01). */
  readonly alpnCallback?: (this: unknown, arg: { servername: string; protocols: string[] }) => string | undefined;
  /** The current bundle as SPIFFE bundle JSON. */
  readonly bundleJson: () => Promise<string>;
  readonly log: Logger;
  readonly limits?: Partial<BundleEndpointLimits>;
}

export interface BundleEndpoint {
  readonly port: number;
  /** Serves new TLS material to the next handshakes. */
  rotate(tls: BundleEndpointTls): void;
  close(): Promise<void>;
}

/**
 * The SPIFFE federation bundle endpoint (SPIRE `pkg/server/endpoints/bundle`): GET `/` answers the
 * bundle as `application/json`; other paths 404, other methods 405 (SPIRE's texts).
 */
export async function startBundleEndpoint(opts: BundleEndpointOptions): Promise<BundleEndpoint> {
  const limits = { ...BUNDLE_ENDPOINT_LIMITS, ...opts.limits };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const text = (status: number, body: string): void => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(`${body}\n`);
    };
    if (req.method !== 'GET') return text(405, '405 method not allowed');
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/') return text(404, '404 page not found');
    opts.bundleJson().then(
      (json) => {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(json);
      },
      (e: unknown) => {
        opts.log.error({ error: (e as Error).message }, 'Unable to retrieve local bundle');
        text(500, '500 unable to retrieve local bundle');
      },
    );
  };
  const server: Server = createServer(
    {
      ...(opts.tls === undefined ? {} : { cert: opts.tls.certPem, key: opts.tls.keyPem }),
      ...(opts.alpnCallback === undefined ? {} : { ALPNCallback: opts.alpnCallback }),
      minVersion: 'TLSv1.2',
      handshakeTimeout: limits.handshakeTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
    },
    handler,
  );
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  // A request body is never read: a client that sends one slowly is cut by requestTimeout.
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', (e: Error) => opts.log.debug({ error: e.message }, 'Bundle endpoint TLS handshake failed'));
  const port = await listenTcp(server, opts.port, opts.host);
  opts.log.info({ address: opts.host, port }, 'Serving bundle endpoint');
  return {
    port,
    rotate(tls) {
      server.setSecureContext({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
