// A gRPC server (gRPC protocol only, HTTP/2) on our own node:http2 server object,
// so handlers can see the connection: the Unix socket (for SO_PEERCRED) or the
// TLS client certificate, through `contextValues`. Unary and server-streaming calls are answered
// directly on the HTTP/2 stream (direct-calls.ts); client and bidi streams go through
// connect-node. Every connection is bounded by connection-guard.ts.
import { setMaxListeners } from 'node:events';
import * as fs from 'node:fs/promises';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { ConnectRouter, ContextValues, Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { acceptAnyAuthority, acceptedSocketOf } from './authority-layer.ts';
import { guardConnections, DEFAULT_FIRST_REQUEST_MS, type ConnectionLimits, type GuardCloseReason } from './connection-guard.ts';
import { directCalls, emptyRoutes, recordingRouter, type GrpcConnection } from './direct-calls.ts';

export type { GrpcConnection } from './direct-calls.ts';
export type { ConnectionLimits, GuardCloseReason } from './connection-guard.ts';

/** Listen on a Unix domain socket. A stale socket file is replaced; a live one is an error. */
export interface UnixListen {
  readonly path: string;
  /** File mode applied to the socket after bind, e.g. `0o777` for a public Workload API socket. */
  readonly mode?: number;
}

/** Listen on TCP; with `tls` the server only speaks TLS + ALPN `h2`, without it plaintext h2c. */
export interface TcpListen {
  readonly host: string;
  /** 0 picks a free port (see `GrpcServer.address`). */
  readonly port: number;
  readonly tls?: http2.SecureServerOptions;
}

export type GrpcListen = UnixListen | TcpListen;

export type GrpcServerAddress = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export interface StartGrpcServerOptions {
  /** Registers service implementations: `(router) => router.service(Desc, impl)`. */
  readonly routes: (router: ConnectRouter) => void;
  readonly listen: GrpcListen;
  /**
   * Per-call context values computed from the connection the call came on: `conn.socket` is the
   * session's socket (`getPeerCertificate()` for TLS, the Unix socket handle for UDS).
   */
  readonly contextValues?: (conn: GrpcConnection, headers: http2.IncomingHttpHeaders) => ContextValues;
  /**
   * Unix listens: called with each connection's socket as it is accepted, before anything is read
   * from it; `contextValues` later gets the same socket as `conn.socket` for each of its calls.
   * E.g. to pin the peer process (SPIRE's peertracker) and remember it for that connection.
   */
  readonly onAccept?: (socket: net.Socket) => void;
  /**
   * Unix listens: takes the connections waiting in the listen queue at once (authority-layer.ts
   * `acceptPending`; the agent passes @ztwim/peercred's acceptPendingConnections). Without it a
   * busy server accepts one connection per event-loop turn.
   */
  readonly acceptPending?: (listenFd: number, max: number) => readonly number[];
  /** Server interceptors, run around every handler. */
  readonly interceptors?: Interceptor[];
  readonly readMaxBytes?: number;
  readonly writeMaxBytes?: number;
  /**
   * Compress responses (gzip/br) larger than 1 KiB when the client accepts it. Off by default, as
   * in grpc-go servers (SPIRE): on a Unix socket or a LAN the CPU spent on zlib at both ends costs
   * more than the bytes saved (a 1,000-entry GetAuthorizedEntries answer is ~100 KiB). Compressed
   * requests are accepted either way.
   */
  readonly compressResponses?: boolean;
  /** Called for connection-level errors (they never crash the process). */
  readonly onConnectionError?: (err: Error) => void;
  /** How long a connection may go without a first call, or without answering pings (connection-guard.ts). */
  readonly limits?: ConnectionLimits;
  /** Called when a connection is closed for breaking `limits` (for a debug log). */
  readonly onConnectionClosed?: (reason: GuardCloseReason) => void;
}

export interface CloseOptions {
  /** How long in-flight calls may take before connections are destroyed (default 5000 ms). */
  readonly graceMs?: number;
}

export interface GrpcServer {
  readonly address: GrpcServerAddress;
  /** The node:http2 server (e.g. `setSecureContext()` to rotate the TLS certificate). */
  readonly httpServer: http2.Http2Server | http2.Http2SecureServer;
  /**
   * Stops accepting connections, aborts handler contexts (streams end), sends GOAWAY,
   * waits up to `graceMs` for calls to finish, then destroys what is left and removes
   * the Unix socket file. Idempotent.
   */
  close(opts?: CloseOptions): Promise<void>;
}

function isUnix(l: GrpcListen): l is UnixListen {
  return 'path' in l;
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function prepareSocketPath(path: string): Promise<void> {
  let st;
  try {
    st = await fs.lstat(path);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new Error(`rpc: ${path} exists and is not a socket`);
  if (await probe(path)) {
    // code ESOCKETINUSE: callers name the listener, the holder's PID and the flag that moves it
    throw Object.assign(new Error(`rpc: socket ${path} is in use by another server`), { code: 'ESOCKETINUSE', path });
  }
  await fs.unlink(path);
}

/**
 * Pending-connection queue of every listener. Go's net.Listen (so spire-agent's Workload API and
 * spire-server's sockets) asks for the kernel's somaxconn, 4,096 on current kernels; Node's
 * default is 511, which a burst of 1,000 workloads starting at once overflows (their connect()
 * fails with EAGAIN on a Unix socket). The kernel still caps it at net.core.somaxconn.
 */
export const LISTEN_BACKLOG = 4096;

function listen(server: net.Server, l: GrpcListen): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (isUnix(l)) server.listen({ path: l.path, backlog: LISTEN_BACKLOG }, done);
    else server.listen({ host: l.host, port: l.port, backlog: LISTEN_BACKLOG }, done);
  });
}

/**
 * Listens on `l`: a stale Unix socket file is replaced and a live one refused, the socket gets its
 * mode (the server is closed and the file removed if that fails). On a Unix socket, connections go
 * through the authority layer (authority-layer.ts: grpc-java's socket-path `:authority`) before
 * node:http2 sees them. Shared by startGrpcServer and the agent's Workload API server.
 */
export async function bindGrpcServer(server: net.Server, l: GrpcListen): Promise<GrpcServerAddress> {
  if (isUnix(l)) {
    acceptAnyAuthority(server);
    await prepareSocketPath(l.path);
  }
  await listen(server, l);
  if (isUnix(l)) {
    if (l.mode !== undefined) {
      try {
        await fs.chmod(l.path, l.mode);
      } catch (e) {
        server.close();
        await fs.unlink(l.path).catch(() => {});
        throw e;
      }
    }
    return { kind: 'unix', path: l.path };
  }
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('rpc: unexpected server address');
  return { kind: 'tcp', host: a.address, port: a.port };
}

/** Starts a gRPC server; resolves once it is listening. */
export async function startGrpcServer(opts: StartGrpcServerOptions): Promise<GrpcServer> {
  const shutdown = new AbortController();
  // connect-node links every open call to this signal: one listener per open stream is expected
  // (agents' long-lived hint streams), not a leak worth Node's MaxListenersExceededWarning.
  setMaxListeners(0, shutdown.signal);
  const contextValues = opts.contextValues;
  // One GrpcConnection per HTTP/2 session, for both the direct path and connect-node's calls.
  const connections = new WeakMap<http2.ServerHttp2Session, GrpcConnection>();
  const connectionOf = (session: http2.ServerHttp2Session): GrpcConnection => {
    let c = connections.get(session);
    // On a Unix socket the accepted socket itself (SO_PEERCRED), also where the authority layer
    // hands node:http2 a rewriting stream in its place.
    if (c === undefined) connections.set(session, (c = { session, socket: acceptedSocketOf(session) ?? session.socket }));
    return c;
  };
  const recorded = emptyRoutes();
  const handler = connectNodeAdapter({
    routes: (router) => opts.routes(recordingRouter(router, recorded)),
    grpc: true,
    grpcWeb: false,
    connect: false,
    shutdownSignal: shutdown.signal,
    ...(opts.interceptors === undefined ? {} : { interceptors: opts.interceptors }),
    ...(opts.readMaxBytes === undefined ? {} : { readMaxBytes: opts.readMaxBytes }),
    ...(opts.writeMaxBytes === undefined ? {} : { writeMaxBytes: opts.writeMaxBytes }),
    // Responses are never large enough to reach this minimum: sent uncompressed.
    ...(opts.compressResponses === true ? {} : { compressMinBytes: Number.MAX_SAFE_INTEGER }),
    // Without allowHTTP1 every request is an Http2ServerRequest.
    ...(contextValues === undefined
      ? {}
      : {
          contextValues: (req) => {
            const r = req as http2.Http2ServerRequest;
            return contextValues(connectionOf(r.stream.session as http2.ServerHttp2Session), r.headers);
          },
        }),
  });
  const onError = opts.onConnectionError ?? ((): void => {});
  // Compressed responses are connect-node's job: then only unknown paths are answered directly.
  const direct = directCalls(recorded, {
    answerCalls: opts.compressResponses !== true,
    interceptors: opts.interceptors ?? [],
    readMaxBytes: opts.readMaxBytes ?? 0xffffffff,
    writeMaxBytes: opts.writeMaxBytes ?? 0xffffffff,
    ...(contextValues === undefined ? {} : { contextValues }),
    connectionOf,
    onError,
  });
  const l = opts.listen;
  // gRPC C-core clients (grpc-python, so py-spiffe) send the percent-encoded socket path as
  // `:authority` on Unix sockets (`tmp%2Fspire-agent%2Fpublic%2Fapi.sock`), which is no valid
  // URL host: connect-node would throw building the request URL, outside any handler. The
  // authority means nothing to us, so an unusable one is replaced; and nothing a client sends
  // may crash the process.
  const safeHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    const auth = req.headers[':authority'];
    if (typeof auth !== 'string' || !URL.canParse(`http://${auth}`)) req.headers[':authority'] = 'localhost';
    try {
      handler(req, res);
    } catch (e) {
      onError(e instanceof Error ? e : new Error(String(e)));
      if (!res.stream.destroyed) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  };
  const server: http2.Http2Server | http2.Http2SecureServer =
    !isUnix(l) && l.tls !== undefined
      ? http2.createSecureServer({ handshakeTimeout: opts.limits?.firstRequestMs ?? DEFAULT_FIRST_REQUEST_MS, ...l.tls, allowHTTP1: false }, safeHandler)
      : http2.createServer({}, safeHandler);
  const stopGuard = guardConnections(server, opts.limits ?? {}, opts.onConnectionClosed ?? ((): void => {}));
  // The compatibility layer turns every 'stream' event into a 'request' for connect-node; the
  // calls the direct path takes must not reach it, so the event is filtered at emit (node:http2
  // offers no other hook in front of the compatibility layer's own 'stream' listener).
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  (server as { emit: (event: string | symbol, ...args: unknown[]) => boolean }).emit = (event, ...args) => {
    if (event === 'stream' && direct.take(args[0] as http2.ServerHttp2Stream, args[1] as http2.IncomingHttpHeaders)) return true;
    return emit(event, ...args);
  };

  const onConnectionError = opts.onConnectionError ?? ((): void => {});
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', onConnectionError);
  });
  const onAccept = opts.onAccept;
  if (isUnix(l)) {
    // Installed here (bindGrpcServer's own call then only finds it): the layer waits for a first
    // request as long as the guard allows one.
    acceptAnyAuthority(server, {
      decisionTimeoutMs: opts.limits?.firstRequestMs ?? DEFAULT_FIRST_REQUEST_MS,
      ...(opts.acceptPending === undefined ? {} : { acceptPending: opts.acceptPending }),
      ...(onAccept === undefined
        ? {}
        : {
            onAccept: (socket: net.Socket) => {
              try {
                onAccept(socket);
              } catch (e) {
                onConnectionError(e instanceof Error ? e : new Error(String(e)));
              }
            },
          }),
    });
  }
  server.on('sessionError', onConnectionError);

  const address = await bindGrpcServer(server, l);

  let closing: Promise<void> | undefined;
  const close = (c: CloseOptions = {}): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      stopGuard();
      shutdown.abort();
      direct.shutdown();
      for (const s of sessions) s.close();
      const timer = setTimeout(() => {
        for (const s of sessions) s.destroy();
      }, c.graceMs ?? 5000);
      try {
        await closed;
      } finally {
        clearTimeout(timer);
      }
      if (isUnix(l)) {
        await fs.unlink(l.path).catch((e: unknown) => {
          if (errnoOf(e) !== 'ENOENT') throw e;
        });
      }
    })();
    return closing;
  };
  return { address, httpServer: server, close };
}
