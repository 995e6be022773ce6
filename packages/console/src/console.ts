// `startConsole`: the console's listener (loopback unless configured otherwise), its login tokens
// and the server admin API connection it uses.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configError, silentLogger, systemClock, type Clock, type Logger } from '@ztwim/core';
import { AdminApi } from './admin.ts';
import { newToken, Sessions } from './auth.ts';
import { OIDC_CALLBACK_PATH, plaintextRefusal, readSecretFile, type ConsoleConfig, type ConsoleOidcConfig } from './console-config.ts';
import { createConsoleHandler } from './http-api.ts';
import { OidcLogin } from './oidc-login.ts';
import { ChangeWatcher } from './changes.ts';
import { dashboardView } from './dashboard.ts';
import { EntriesPerAgentCache } from './entries-per-agent.ts';
import { ServerMetricsFeed } from './server-metrics.ts';

export interface ConsoleOptions {
  /** The server's admin API socket. */
  readonly serverSocketPath: string;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8090; 0 picks a free port. */
  readonly port?: number;
  /** Login token of the admin role; default a fresh random one (printed by the caller). */
  readonly adminToken?: string;
  /** Login token of the read-only role; default a fresh random one. */
  readonly viewerToken?: string;
  /** Serve https with this certificate and key (PEM files); the session cookie is then Secure. Required off loopback. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Login tokens accepted (default true); false: OIDC logins only. */
  readonly tokenLogin?: boolean;
  /** A session ends this long after its login (default 12 h). */
  readonly sessionLifetimeMs?: number;
  /** OIDC login to an external provider, with the client secret read from its file. */
  readonly oidc?: ConsoleOidcConfig & { readonly clientSecret?: string };
  /** The built web app (index.html, app.js, app.css); default: found next to this package. */
  readonly staticDir?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly eventsIntervalMs?: number;
  /**
   * The server's Prometheus endpoint (http://HOST:PORT/metrics, its `telemetry { Prometheus {} }`
   * listener): the dashboard's SVIDs per minute and signing times. Without it the dashboard says
   * how to enable them.
   */
  readonly metricsUrl?: string;
  /** How often the metrics are scraped (default 5 s). */
  readonly metricsIntervalMs?: number;
  /** When the port is in use, listen on a free one instead of failing (`ztwim up`'s default port). */
  readonly fallbackToFreePort?: boolean;
}

export interface RunningConsole {
  readonly url: string;
  readonly port: number;
  /** The asked port was in use and `fallbackToFreePort` picked another. */
  readonly fellBack: boolean;
  /** Empty when login tokens are turned off. */
  readonly adminToken: string;
  readonly viewerToken: string;
  close(): Promise<void>;
}

export const DEFAULT_CONSOLE_PORT = 8090;

/**
 * Where the built web app is: beside the CLI bundle (`console-web/`), or in this package's
 * `dist/web/` (run from source or from tsc's output).
 */
export function defaultStaticDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'console-web'), join(here, 'web'), join(here, '..', 'dist', 'web')];
  for (const c of candidates) if (existsSync(join(c, 'index.html'))) return c;
  throw configError(`console: the web app is not built (looked in ${candidates.join(', ')}): run npm run build`);
}

export async function startConsole(opts: ConsoleOptions): Promise<RunningConsole> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? DEFAULT_CONSOLE_PORT;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw configError(`console: port ${port} is not a TCP port`);
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? silentLogger();
  const why = opts.tls === undefined ? plaintextRefusal(host) : undefined;
  if (why !== undefined) throw configError(`console: ${why}`);
  const tokenLogin = opts.tokenLogin ?? true;
  if (!tokenLogin && opts.oidc === undefined) throw configError('console: login tokens are turned off and no OIDC login is configured: nobody could log in');
  const adminToken = tokenLogin ? (opts.adminToken ?? newToken()) : '';
  const viewerToken = tokenLogin ? (opts.viewerToken ?? newToken()) : '';
  if (tokenLogin && adminToken.length < 16) throw configError('console: the admin login token must have at least 16 characters');
  const staticDir = opts.staticDir ?? defaultStaticDir();
  let metricsUrl: URL | undefined;
  if (opts.metricsUrl !== undefined && opts.metricsUrl !== '') {
    try {
      metricsUrl = new URL(opts.metricsUrl);
    } catch {
      throw configError(`console: metrics URL ${JSON.stringify(opts.metricsUrl)} is not a URL (want http://HOST:PORT/metrics)`);
    }
    if (metricsUrl.protocol !== 'http:' && metricsUrl.protocol !== 'https:') throw configError(`console: metrics URL ${metricsUrl.href}: want http or https`);
  }
  const admin = new AdminApi(opts.serverSocketPath);
  // The redirect URI is known before listening only when configured; otherwise it is this
  // console's own URL, known once bound (the login routes read it through `oidcRef`).
  const oidcRef: { login?: OidcLogin } = {};
  const fingerprint = (): Promise<string> => admin.fingerprint();
  const changes = new ChangeWatcher({ fingerprint, clock, ...(opts.eventsIntervalMs === undefined ? {} : { intervalMs: opts.eventsIntervalMs }) });
  const perAgent = new EntriesPerAgentCache({
    clock,
    fingerprint,
    load: async () => {
      const [agents, entries] = await Promise.all([admin.allAgents(), admin.allEntries()]);
      return { agents, entries };
    },
  });
  const feed =
    metricsUrl === undefined
      ? undefined
      : new ServerMetricsFeed({
          url: metricsUrl.href,
          clock,
          log,
          ...(opts.metricsIntervalMs === undefined ? {} : { intervalMs: opts.metricsIntervalMs }),
        });
  feed?.start();
  const handler = createConsoleHandler({
    admin,
    sessions: new Sessions(tokenLogin ? { admin: adminToken, viewer: viewerToken } : undefined, clock, opts.sessionLifetimeMs),
    staticDir,
    secure: opts.tls !== undefined,
    clock,
    log,
    ...(opts.oidc === undefined
      ? {}
      : {
          oidc: {
            route: (...a) => oidcRef.login?.route(...a) ?? Promise.resolve(undefined),
            logoutUrl: (s) => oidcRef.login?.logoutUrl(s) ?? Promise.resolve(undefined),
          },
        }),
    changes,
    dashboard: () => dashboardView(feed, perAgent, clock),
  });
  let server: Server;
  if (opts.tls !== undefined) {
    const [cert, key] = await Promise.all([readFile(opts.tls.certFile), readFile(opts.tls.keyFile)]);
    server = createHttpsServer({ cert, key }, handler);
  } else {
    server = createHttpServer(handler);
  }
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const listen = (p: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => reject(e);
      server.once('error', onError);
      server.listen(p, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
  let fellBack = false;
  try {
    await listen(port);
  } catch (e) {
    const inUse = (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
    if (!inUse || opts.fallbackToFreePort !== true) {
      feed?.stop();
      admin.close();
      throw inUse ? configError(`console: ${host}:${port} is in use (move the console with its port setting)`, { cause: e }) : e;
    }
    fellBack = true;
    await listen(0);
  }
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `${opts.tls === undefined ? 'http' : 'https'}://${shownHost}:${bound}/`;
  log.info({ address: url }, 'console: Listening');
  if (opts.oidc !== undefined) {
    const { clientSecret, ...oidcCfg } = opts.oidc;
    oidcRef.login = new OidcLogin(oidcCfg, {
      redirectUri: opts.oidc.redirectUri ?? new URL(OIDC_CALLBACK_PATH, url).href,
      ...(clientSecret === undefined ? {} : { clientSecret }),
      secure: opts.tls !== undefined,
      clock,
      log,
    });
    oidcRef.login.warmUp();
  }
  return {
    url,
    port: bound,
    fellBack,
    adminToken,
    viewerToken,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      feed?.stop();
      admin.close();
    },
  };
}

/**
 * The console's options from a `console { }` block: token files and the OIDC client secret read
 * (a file that cannot be read, or a token under 16 characters, is an error naming the setting).
 */
export async function consoleOptionsFromConfig(cfg: ConsoleConfig, serverSocketPath: string): Promise<ConsoleOptions> {
  const token = (file: string | undefined, key: string): Promise<string | undefined> =>
    file === undefined || !cfg.tokenLogin ? Promise.resolve(undefined) : readSecretFile(file, `console: ${key}`, 16);
  const [adminToken, viewerToken, clientSecret] = await Promise.all([
    token(cfg.adminTokenFile, 'admin_token_file'),
    token(cfg.viewerTokenFile, 'viewer_token_file'),
    cfg.oidc?.clientSecretFile === undefined ? Promise.resolve(undefined) : readSecretFile(cfg.oidc.clientSecretFile, 'console: oidc.client_secret_file', 1),
  ]);
  return {
    serverSocketPath,
    host: cfg.bindAddress,
    port: cfg.bindPort,
    tokenLogin: cfg.tokenLogin,
    sessionLifetimeMs: cfg.sessionLifetimeMs,
    ...(cfg.tls === undefined ? {} : { tls: cfg.tls }),
    ...(adminToken === undefined ? {} : { adminToken }),
    ...(viewerToken === undefined ? {} : { viewerToken }),
    ...(cfg.oidc === undefined ? {} : { oidc: { ...cfg.oidc, ...(clientSecret === undefined ? {} : { clientSecret }) } }),
  };
}
