// gRPC client transports (HTTP/2, gRPC protocol only) built on connect-node.
import * as net from 'node:net';
import type * as http2 from 'node:http2';
import type { Interceptor, StreamResponse, Transport } from '@connectrpc/connect';
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
  /** HTTP/2 PING interval used to detect dead connections (ms). */
  readonly pingIntervalMs?: number;
}

export interface TcpGrpcTransportOptions extends GrpcClientOptions {
  readonly host: string;
  readonly port: number;
  /**
   * TLS settings (`ca`, `cert`, `key`, `checkServerIdentity`, `servername`, ...).
   * Omit for plaintext HTTP/2 (h2c).
   */
  readonly tls?: http2.SecureClientSessionOptions;
}

function finish(baseUrl: string, opts: GrpcClientOptions, nodeOptions: http2.SecureClientSessionOptions): GrpcClientTransport {
  const sessionOptions = opts.pingIntervalMs === undefined ? {} : { pingIntervalMs: opts.pingIntervalMs };
  const sessionManager = new Http2SessionManager(baseUrl, sessionOptions, nodeOptions);
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
  return finish(`${scheme}://${host}:${opts.port}`, opts, nodeOptions);
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
