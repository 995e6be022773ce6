// gRPC client transports (HTTP/2, gRPC protocol only) built on connect-node.
import * as net from 'node:net';
import * as tls from 'node:tls';
import type * as http2 from 'node:http2';
import { constants as http2Constants } from 'node:http2';
import type { Duplex } from 'node:stream';
import { Code, ConnectError, type Interceptor, type StreamResponse, type Transport } from '@connectrpc/connect';
import type { DescMessage } from '@bufbuild/protobuf';
import { Http2SessionManager } from '@connectrpc/connect-node';
import { directCallsClient } from './direct-calls-client.ts';
import { withDialCode } from './dial-error.ts';

/** The response with its messages re-thrown as withDialCode errors. */
function unavailableOnDialFailure<I extends DescMessage, O extends DescMessage>(res: StreamResponse<I, O>): StreamResponse<I, O> {
  const messages = res.message;
  return {
    ...res,
    message: (async function* () {
      try {
        yield* messages;
      } catch (e) {
        throw withDialCode(e);
      }
    })(),
  };
}

/** A connect `Transport` that owns its HTTP/2 connection and can be closed. */
export interface GrpcClientTransport extends Transport {
  /** Tears down the HTTP/2 connection; in-flight calls fail. Do not reuse the transport afterwards. */
  close(): void;
}

/** Options shared by the Unix and TCP transports. */
export interface GrpcClientOptions {
  /** Client interceptors, e.g. to add metadata to every call. */
  readonly interceptors?: Interceptor[];
  /** Deadline applied to calls that do not set `timeoutMs` themselves. */
  readonly defaultTimeoutMs?: number;
  /** Largest message accepted from the server (bytes). */
  readonly readMaxBytes?: number;
  /**
   * Keepalive (gRPC's client keepalive, A8): while a call is open and nothing arrived from the
   * server for this long, an HTTP/2 PING is sent; a connection idle for longer is checked with a
   * PING before its next call (ms; default none).
   */
  readonly pingIntervalMs?: number;
  /** A PING not answered within this long tears the connection down, its calls Unavailable (ms; default 15 s). */
  readonly pingTimeoutMs?: number;
}

export interface TcpGrpcTransportOptions extends GrpcClientOptions {
  readonly host: string;
  readonly port: number;
  /**
   * TLS settings (`ca`, `cert`, `key`, `checkServerIdentity`, `servername`, ...).
   * Omit for plaintext HTTP/2 (h2c).
   */
  readonly tls?: http2.SecureClientSessionOptions;
  /**
   * A connection whose TCP connect and TLS handshake take longer than this fails Unavailable (ms;
   * default none: the call's deadline). A server that is stopped (SIGSTOP) or hung still has its
   * listening socket accept connections, so without it a new connection waits for the deadline.
   */
  readonly connectTimeoutMs?: number;
}

/**
 * connect-node's session manager, with two guards for the keepalive:
 *
 * - A listener that swallows a session's late 'error' on every session a call ran on. A session
 *   that a keepalive PING timeout destroyed emits its 'error' once its socket closed; when abort()
 *   (close()) comes in between, connect-node has already taken its own listener off (it adds a
 *   swallowing one only to sessions not destroyed yet) and that error would be uncaught and end
 *   the process. The manager needs nothing from it: the calls on the session failed already.
 * - A bound on getting a usable connection (`readyTimeoutMs`). A request on a connection idle for
 *   longer than the PING interval first checks it with a PING; when the connection closes under
 *   that PING (the server died), node cancels the PING without an 'error' and connect-node's check
 *   never ends: the call would wait for its deadline. Past the bound the connection is dropped and
 *   the call fails Unavailable (a fail-over error), as for a PING timeout.
 */
class GuardedSessionManager extends Http2SessionManager {
  readonly #guarded = new WeakSet<http2.Http2Session>();
  readonly #readyTimeoutMs: number | undefined;

  constructor(
    url: string,
    pingOptions: ConstructorParameters<typeof Http2SessionManager>[1],
    nodeOptions: http2.SecureClientSessionOptions,
    readyTimeoutMs?: number,
  ) {
    super(url, pingOptions, nodeOptions);
    this.#readyTimeoutMs = readyTimeoutMs;
  }

  override async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, 'signal'>,
  ): Promise<http2.ClientHttp2Stream> {
    const pending = super.request(method, path, headers, options);
    const stream = this.#readyTimeoutMs === undefined ? await pending : await this.#bounded(pending, this.#readyTimeoutMs);
    const session = stream.session;
    if (session !== undefined && !this.#guarded.has(session)) {
      this.#guarded.add(session);
      session.on('error', () => undefined);
    }
    return stream;
  }

  async #bounded(pending: Promise<http2.ClientHttp2Stream>, ms: number): Promise<http2.ClientHttp2Stream> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        const e = new ConnectError(`no usable connection within ${ms} ms (keepalive PING or connect)`, Code.Unavailable);
        this.abort(e);
        reject(e);
      }, ms);
      timer.unref();
    });
    // A stream that comes after the bound has no caller: close it.
    pending.then(
      (s) => {
        if (timedOut) s.close(http2Constants.NGHTTP2_CANCEL);
      },
      () => undefined,
    );
    try {
      return await Promise.race([pending, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function finish(
  baseUrl: string,
  opts: GrpcClientOptions & { readonly connectTimeoutMs?: number },
  nodeOptions: http2.SecureClientSessionOptions,
): GrpcClientTransport {
  const sessionOptions = {
    ...(opts.pingIntervalMs === undefined ? {} : { pingIntervalMs: opts.pingIntervalMs }),
    ...(opts.pingTimeoutMs === undefined ? {} : { pingTimeoutMs: opts.pingTimeoutMs }),
  };
  // A usable connection within the time a PING check and a new connection may take (the keepalive).
  const readyTimeoutMs = opts.pingIntervalMs === undefined ? undefined : (opts.pingTimeoutMs ?? 15_000) + (opts.connectTimeoutMs ?? 15_000) + 1000;
  const sessionManager = new GuardedSessionManager(baseUrl, sessionOptions, nodeOptions, readyTimeoutMs);
  // connect-node's transport (and with it node:http, node:https and its universal client) is
  // imported on the first streaming call: a command that makes only unary calls (most of the
  // CLI) never loads it (bench/cli.ts).
  let streaming: Promise<Transport> | undefined;
  const streamingTransport = (): Promise<Transport> =>
    (streaming ??= import('@connectrpc/connect-node').then(({ createGrpcTransport }) =>
      createGrpcTransport({
        baseUrl,
        sessionManager,
        ...(opts.interceptors === undefined ? {} : { interceptors: opts.interceptors }),
        ...(opts.defaultTimeoutMs === undefined ? {} : { defaultTimeoutMs: opts.defaultTimeoutMs }),
        ...(opts.readMaxBytes === undefined ? {} : { readMaxBytes: opts.readMaxBytes }),
      }),
    ));
  // Unary calls go straight to the session's HTTP/2 streams (direct-calls-client.ts); streaming
  // calls through connect-node, on the same connection.
  const unary = directCallsClient({
    sessionManager,
    baseUrl,
    ...(opts.interceptors === undefined ? {} : { interceptors: opts.interceptors }),
    ...(opts.defaultTimeoutMs === undefined ? {} : { defaultTimeoutMs: opts.defaultTimeoutMs }),
    ...(opts.readMaxBytes === undefined ? {} : { readMaxBytes: opts.readMaxBytes }),
  });
  return {
    unary,
    // A dial failure is Unavailable on streams too (./dial-error.ts).
    stream: (...args) =>
      streamingTransport()
        .then((transport) => transport.stream(...args))
        .then(
          (r) => unavailableOnDialFailure(r),
          (e: unknown) => Promise.reject(withDialCode(e)),
        ),
    close: () => sessionManager.abort(),
  };
}

/**
 * A gRPC client transport over a Unix domain socket. The `:authority` sent is
 * `localhost`, as grpc-go does for `unix:` targets.
 */
export function createUnixGrpcTransport(socketPath: string, opts: GrpcClientOptions = {}): GrpcClientTransport {
  if (socketPath === '') throw new Error('rpc: unix socket path is empty');
  return finish('http://localhost', opts, {
    createConnection: () => net.connect({ path: socketPath }),
  });
}

/** A gRPC client transport over TCP, with TLS when `tls` is given (h2c otherwise). */
export function createTcpGrpcTransport(opts: TcpGrpcTransportOptions): GrpcClientTransport {
  const host = opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : opts.host;
  const scheme = opts.tls === undefined ? 'http' : 'https';
  const nodeOptions: http2.SecureClientSessionOptions = opts.tls === undefined ? {} : { ALPNProtocols: ['h2'], ...opts.tls };
  if (opts.connectTimeoutMs !== undefined) nodeOptions.createConnection = boundedConnect(opts, opts.connectTimeoutMs);
  return finish(`${scheme}://${host}:${opts.port}`, opts, nodeOptions);
}

/**
 * http2's `createConnection` that dials as node:http2 does (TLS with ALPN h2 and the host as SNI
 * unless it is an IP or a servername is given; plain TCP for h2c), destroying the socket when it is
 * not connected (TLS handshake included) within `ms`. node:http2 has no connect timeout of its own.
 */
function boundedConnect(opts: TcpGrpcTransportOptions, ms: number): (authority: URL, options: http2.SecureClientSessionOptions) => Duplex {
  return (_authority, options) => {
    let socket: net.Socket;
    if (opts.tls === undefined) socket = net.connect({ host: opts.host, port: opts.port });
    else {
      const sni = options.servername !== undefined && options.servername !== '' ? options.servername : net.isIP(opts.host) === 0 ? opts.host : undefined;
      socket = tls.connect({ ...options, host: opts.host, port: opts.port, ALPNProtocols: ['h2'], ...(sni === undefined ? {} : { servername: sni }) });
    }
    const timer = setTimeout(() => {
      socket.destroy(new ConnectError(`connection to ${opts.host}:${opts.port} not established within ${ms} ms`, Code.Unavailable));
    }, ms);
    timer.unref();
    const done = (): void => clearTimeout(timer);
    socket.once(opts.tls === undefined ? 'connect' : 'secureConnect', done);
    socket.once('close', done);
    return socket;
  };
}

/** A client interceptor that sets fixed request metadata on every call (e.g. `workload.spiffe.io: true`). */
export function headersInterceptor(headers: Readonly<Record<string, string>>): Interceptor {
  return (next) => async (req) => {
    for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
    return next(req);
  };
}

/**
 * Runs a server-streaming call so that leaving the loop early cancels it.
 *
 * connect-es clients do NOT cancel the HTTP/2 stream when a `for await` loop over a
 * server stream exits early (its iterable has no `return()`); the server handler
 * would keep running until the connection closes. Wrap the call instead:
 *
 *   for await (const m of cancelOnBreak((signal) => client.fetchJWTBundles({}, { signal }))) { break; }
 */
export async function* cancelOnBreak<T>(start: (signal: AbortSignal) => AsyncIterable<T>, signal?: AbortSignal): AsyncGenerator<T, void, undefined> {
  const ac = new AbortController();
  let ended = false;
  try {
    yield* start(signal === undefined ? ac.signal : AbortSignal.any([signal, ac.signal]));
    ended = true;
  } finally {
    if (!ended) ac.abort();
  }
}
