import { lstat, unlink } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Clock, Logger, Task } from '@ztwim/core';
import { closeOnAbort, runTasks, silentLogger, systemClock } from '@ztwim/core';
import { validateOidcConfig, type ListenAddress, type OidcConfig, type ValidatedOidcConfig } from './config.ts';
import { OidcHandler, sendError } from './handler.ts';
import type { JwksSource } from './jwks-source.ts';
import { OidcMetrics } from './metrics.ts';
import { AcmeCertManager, CertFileWatcher, type ServingCert } from '@ztwim/acme';

export interface OidcProviderDeps {
  /** Where the keys come from; the provider runs its background work (run()) as one of its tasks. */
  readonly source: JwksSource;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Registry for the provider's metrics; a new one by default. */
  readonly registry?: Registry;
  /** How long close() lets in-flight requests finish before dropping connections. Default 10 s. */
  readonly shutdownGraceMs?: number;
  /** Called whenever a serving certificate is installed (initial load, file reload, ACME renewal). */
  readonly onCertificate?: (cert: ServingCert) => void;
  /**
   * Log every request at debug level ("Incoming request" with remote_addr, method, url,
   * user_agent), as SPIRE's provider does with `log_requests = true`.
   */
  readonly logRequests?: boolean;
}

/** Base URLs of what the provider listens on (ports resolved when `:0` was asked for). */
export interface OidcProviderUrls {
  /** Plain HTTP (insecureAddr). */
  readonly http?: string;
  /** TLS (servingCertFile or acme). */
  readonly https?: string;
  /** Unix socket path (listenSocketPath). */
  readonly socketPath?: string;
  /** ACME http-01 responder. */
  readonly acmeHttp?: string;
  /** Health checks listener. */
  readonly health?: string;
  /** Metrics endpoint (full URL including the path). */
  readonly metrics?: string;
}

export interface OidcProvider {
  readonly urls: OidcProviderUrls;
  readonly config: ValidatedOidcConfig;
  readonly handler: OidcHandler;
  readonly metrics: OidcMetrics;
  /** Ready = at least one key published. */
  ready(): boolean;
  /** The serving certificate in use (TLS listeners only). */
  servingCert(): ServingCert | undefined;
  /** Resolves once the provider has stopped (after close(), or when one of its tasks failed). */
  readonly done: Promise<void>;
  /** Stops accepting connections, lets in-flight requests finish, stops the pollers. */
  close(): Promise<void>;
}

/** One request, as SPIRE's logHandler reports it (a Unix socket peer has no address: "@"). */
function logRequest(logger: Logger, req: IncomingMessage): void {
  const { remoteAddress, remotePort } = req.socket;
  logger.debug(
    {
      remote_addr:
        remoteAddress === undefined ? '@' : remoteAddress.includes(':') ? `[${remoteAddress}]:${String(remotePort)}` : `${remoteAddress}:${String(remotePort)}`,
      method: req.method,
      url: req.url,
      user_agent: req.headers['user-agent'],
    },
    'Incoming request',
  );
}

function listen(server: Server, where: ListenAddress | string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      reject(e);
    };
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (typeof where === 'string') server.listen(where, done);
    else if (where.host === undefined) server.listen(where.port, done);
    else server.listen(where.port, where.host, done);
  });
}

function urlOf(scheme: string, server: Server, where: ListenAddress): string {
  const a = server.address() as AddressInfo;
  let host = where.host ?? 'localhost';
  if (host.includes(':')) host = `[${host}]`;
  return `${scheme}://${host}:${a.port}`;
}

async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (st.isSocket()) await unlink(path);
  } catch {
    // absent
  }
}

/** Tracks a server's connections so shutdown can wait for in-flight requests. */
class Listener {
  readonly server: Server;
  readonly name: string;
  closing = false;

  constructor(name: string, server: Server) {
    this.name = name;
    this.server = server;
  }

  close(graceMs: number, clock: Clock): Promise<void> {
    this.closing = true;
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = clock.setTimer(graceMs, () => {
        this.server.closeAllConnections();
      });
      this.server.close(() => {
        cancel();
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }
}

/**
 * Starts the OIDC discovery provider: the main listener (plain HTTP, Unix socket, TLS from
 * files, or TLS from ACME) and, when configured, health checks and metrics listeners.
 *
 * The provider is a list of tasks, as the server and the agent are: the key source's poller, the
 * serving certificate's reload or ACME renewal, and one close-on-abort task per listener run
 * together until close() aborts them or one fails.
 */
export async function startOidcProvider(config: OidcConfig, deps: OidcProviderDeps): Promise<OidcProvider> {
  const cfg = validateOidcConfig(config);
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? silentLogger();
  const graceMs = deps.shutdownGraceMs ?? 10_000;
  const metrics = new OidcMetrics(deps.registry);
  const handler = new OidcHandler({
    source: deps.source,
    domains: cfg.domains,
    issuer: cfg.issuer,
    jwksUri: cfg.jwksUri,
    serverPathPrefix: cfg.serverPathPrefix,
    setKeyUse: cfg.setKeyUse,
    allowInsecureScheme: cfg.allowInsecureScheme,
    maxKeys: cfg.maxKeys,
    logger,
    metrics,
  });
  const tasks: Task[] = [];
  const stopping = new AbortController();
  // Each task has a name; a failure is logged with it, then stops the provider.
  const add = (name: string, task: Task): void => {
    tasks.push(async (signal) => {
      try {
        await task(signal);
      } catch (e) {
        if (!signal.aborted) logger.error({ task: name, error: (e as Error).message }, 'OIDC discovery provider task failed');
        throw e;
      }
    });
  };
  const addListener = (l: Listener): void => {
    add(
      `${l.name.replace('-', '_')}_listener`,
      closeOnAbort(() => l.close(graceMs, clock)),
    );
  };
  add(
    'handler',
    closeOnAbort(() => handler.close()),
  );
  const runSource = deps.source.run?.bind(deps.source);
  if (runSource !== undefined) add('jwks_source', runSource);
  let cert: ServingCert | undefined;
  const urls: { -readonly [K in keyof OidcProviderUrls]: OidcProviderUrls[K] } = {};

  if (deps.logRequests === true) logger.info({}, 'Logging all requests');
  const main = (l: () => Listener) => (req: IncomingMessage, res: ServerResponse) => {
    if (deps.logRequests === true) logRequest(logger, req);
    const done = metrics.startRequest(handler.routeOf((req.url ?? '/').split('?')[0] ?? '/'));
    res.once('finish', () => done(res.statusCode));
    if (l().closing) res.setHeader('Connection', 'close');
    handler.handle(req, res);
  };

  try {
    const lc = cfg.listener;
    if (lc.kind === 'insecure' || lc.kind === 'socket') {
      let self: Listener | undefined;
      const server = createHttpServer(main(() => self as Listener));
      self = new Listener('main', server);
      addListener(self);
      if (lc.kind === 'insecure') {
        await listen(server, lc.addr);
        urls.http = urlOf('http', server, lc.addr);
      } else {
        await removeStaleSocket(lc.path);
        await listen(server, lc.path);
        urls.socketPath = lc.path;
      }
    } else {
      let first: ServingCert;
      let https: ReturnType<typeof createHttpsServer> | undefined;
      const onLoad = (c: ServingCert): void => {
        cert = c;
        metrics.servingCertLoaded(c.notAfter);
        https?.setSecureContext({ cert: c.certPem, key: c.keyPem, minVersion: 'TLSv1.2' });
        deps.onCertificate?.(c);
      };
      const onError = (): void => metrics.servingCertFailed();
      if (lc.kind === 'servingCertFile') {
        const watcher = new CertFileWatcher({
          certFilePath: lc.certFilePath,
          keyFilePath: lc.keyFilePath,
          intervalMs: lc.fileSyncIntervalMs,
          clock,
          logger,
          onLoad,
          onError,
        });
        add('serving_cert_reload', watcher.reloadTask());
        add(
          'serving_cert_watcher',
          closeOnAbort(() => watcher.close()),
        );
        first = await watcher.start();
      } else {
        const mgr = new AcmeCertManager({
          directoryUrl: lc.directoryUrl,
          email: lc.email,
          domains: cfg.domains,
          cacheDir: lc.cacheDir,
          directoryCaPem: lc.directoryCaPem,
          tosAccepted: true,
          renewFraction: lc.renewFraction,
          clock,
          logger,
          onLoad,
          onError,
        });
        add('acme_renewal', mgr.renewalTask());
        add(
          'acme_manager',
          closeOnAbort(() => mgr.close()),
        );
        const challenge = createHttpServer((req, res) => mgr.handleHttp(req, res));
        addListener(new Listener('acme-http', challenge));
        await listen(challenge, lc.httpChallengeAddr);
        urls.acmeHttp = urlOf('http', challenge, lc.httpChallengeAddr);
        first = await mgr.start();
      }
      let self: Listener | undefined;
      https = createHttpsServer(
        { cert: first.certPem, key: first.keyPem, minVersion: 'TLSv1.2' },
        main(() => self as Listener),
      );
      self = new Listener('main', https);
      addListener(self);
      await listen(https, lc.addr);
      urls.https = urlOf('https', https, lc.addr);
    }

    const ready = (): boolean => handler.ready();
    const hc = cfg.healthChecks;
    const mc = cfg.metrics;
    const serveMetrics = (res: ServerResponse): void => {
      metrics.render().then(
        (m) => {
          res.writeHead(200, { 'Content-Type': m.contentType });
          res.end(m.body);
        },
        (e: unknown) => sendError(res, 500, `metrics: ${(e as Error).message}`),
      );
    };
    if (hc !== undefined) {
      let self: Listener | undefined;
      const server = createHttpServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        const closing = self?.closing === true;
        if (path === hc.readyPath) {
          const ok = ready() && !closing;
          sendError(res, ok ? 200 : 500, ok ? 'ready' : 'not ready');
        } else if (path === hc.livePath) {
          sendError(res, closing ? 500 : 200, closing ? 'shutting down' : 'live');
        } else if (mc !== undefined && mc.addr === undefined && path === mc.path) {
          serveMetrics(res);
        } else {
          sendError(res, 404, '404 page not found');
        }
      });
      self = new Listener('health', server);
      addListener(self);
      await listen(server, hc.addr);
      urls.health = urlOf('http', server, hc.addr);
      if (mc !== undefined && mc.addr === undefined) urls.metrics = `${urls.health}${mc.path}`;
    }
    if (mc?.addr !== undefined) {
      const server = createHttpServer((req, res) => {
        if ((req.url ?? '/').split('?')[0] === mc.path) serveMetrics(res);
        else sendError(res, 404, '404 page not found');
      });
      addListener(new Listener('metrics', server));
      await listen(server, mc.addr);
      urls.metrics = `${urlOf('http', server, mc.addr)}${mc.path}`;
    }
  } catch (e) {
    // Start-up failed: close what was opened so far.
    stopping.abort();
    await runTasks(tasks, stopping.signal).catch(() => undefined);
    throw e;
  }

  const done = runTasks(tasks, stopping.signal)
    .catch(() => undefined) // logged with the task's name
    .then(() => {
      logger.info({}, 'OIDC discovery provider stopped');
    });
  logger.info({ urls, domains: cfg.domains, issuer: cfg.issuer }, 'OIDC discovery provider started');
  return {
    urls,
    config: cfg,
    handler,
    metrics,
    ready: () => handler.ready(),
    servingCert: () => cert,
    done,
    close() {
      stopping.abort();
      return done;
    },
  };
}
