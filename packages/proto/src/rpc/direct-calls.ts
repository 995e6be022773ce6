// Unary and server-streaming gRPC calls answered directly on node:http2 streams, with the same
// service implementations, interceptors and context values as connect-node. connect-node serves
// every call through the http2 compatibility layer and a chain of async iterables; for a unary
// call that machinery cost more CPU than our handlers themselves (a server profile of
// GetAuthorizedEntries: ~60% of the server's busy time in connect-node and the compat layer, the
// handler ~3%), and an open server stream (an agent's hint stream) held ~36 KB of heap against
// ~16 KB here, connection included. Client- and bidi-streaming methods, JSON, unknown request
// compressions and anything else unusual still go to connect-node (startGrpcServer decides per
// stream, from the request headers alone).
import * as http2 from 'node:http2';
import {
  Code,
  ConnectError,
  createContextValues,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from '@connectrpc/connect';
import { setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import {
  create,
  fromBinary,
  isMessage,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type Message,
  type MessageShape,
} from '@bufbuild/protobuf';
import { CallAbort } from './call-abort.ts';
import { encodingOf } from './encoded.ts';
import {
  GRPC_OK_HEADERS,
  collectRequestBody,
  fetchHeaders,
  grpcFrame,
  grpcPrefix,
  isGrpcProtoContentType,
  parseGrpcTimeout,
  unaryRequestPayload,
} from './grpc-wire.ts';

export type UnarySpec = MethodImplSpec & { kind: 'unary' | 'server_streaming' };

// Reasons shared by every ended call (a DOMException per abort is costly and carries nothing).
const CANCELLED = new ConnectError('call cancelled', Code.Canceled);
const SHUTDOWN = new ConnectError('server is shutting down', Code.Unavailable);
const COMPLETED = new ConnectError('call completed', Code.Canceled);
/** From this size on a response is written without copying it into a framed buffer. */
const LARGE = 16 * 1024;

/** What the routes registered: the calls the direct path answers, and every served path and service. */
export interface RecordedRoutes {
  /** Unary and server-streaming implementations registered without options, by `/service/Method`. */
  readonly direct: Map<string, UnarySpec>;
  /** Every `/service/Method` registered (any kind, with or without options). */
  readonly paths: Set<string>;
  /** Every fully-qualified service name with at least one method registered. */
  readonly services: Set<string>;
}

export function emptyRoutes(): RecordedRoutes {
  return { direct: new Map(), paths: new Set(), services: new Set() };
}

/**
 * A ConnectRouter that also records what is registered on it. Registration options (per-service
 * interceptors, limits) are connect-node's business: a service registered with options is left to
 * connect-node entirely.
 */
export function recordingRouter(inner: ConnectRouter, into: RecordedRoutes): ConnectRouter {
  const record = (spec: MethodImplSpec, direct: boolean): void => {
    const path = `/${spec.method.parent.typeName}/${spec.method.name}`;
    into.paths.add(path);
    into.services.add(spec.method.parent.typeName);
    if (direct && (spec.kind === 'unary' || spec.kind === 'server_streaming')) into.direct.set(path, spec);
  };
  const noOptions = (o: unknown): boolean => o === undefined || (typeof o === 'object' && o !== null && Object.keys(o).length === 0);
  const router: ConnectRouter = {
    get handlers() {
      return inner.handlers;
    },
    service(service, impl, options) {
      inner.service(service, impl, options);
      const spec = createServiceImplSpec(service, impl as never);
      for (const m of service.methods) {
        // Only methods the implementation defines go direct (the rest answer Unimplemented via connect).
        const ms = spec.methods[m.localName];
        if (ms !== undefined) record(ms, noOptions(options) && (impl as Record<string, unknown>)[m.localName] !== undefined);
      }
      return router;
    },
    rpc(method: DescMethod, impl: never, options?: unknown) {
      (inner.rpc as (m: DescMethod, i: never, o?: unknown) => unknown)(method, impl, options);
      record(createMethodImplSpec(method, impl), noOptions(options));
      return router;
    },
  } as ConnectRouter;
  return router;
}

/**
 * The status grpc-go (so spire-server and spire-agent) answers for a path no service serves:
 * Unimplemented, `unknown service <full.Name>` or `unknown method <Method> for service <full.Name>`;
 * a path that is not `/service/method` is `malformed method name: "<path>"`.
 */
export function unknownPathError(path: string, services: ReadonlySet<string>): ConnectError {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (m === null) return new ConnectError(`malformed method name: ${JSON.stringify(path)}`, Code.Unimplemented);
  const [, service, method] = m as unknown as [string, string, string];
  return new ConnectError(services.has(service) ? `unknown method ${method} for service ${service}` : `unknown service ${service}`, Code.Unimplemented);
}

/** What a handler sees of the connection a call came on. */
export interface GrpcConnection {
  readonly session: http2.ServerHttp2Session;
  /** The session's socket (TLS: `getPeerCertificate()`, `getProtocol()`; Unix: the socket handle). */
  readonly socket: http2.ServerHttp2Session['socket'];
}

export interface DirectCallsOptions {
  readonly interceptors: readonly Interceptor[];
  readonly readMaxBytes: number;
  readonly writeMaxBytes: number;
  readonly contextValues?: (conn: GrpcConnection, headers: http2.IncomingHttpHeaders) => ContextValues;
  /** False: only unknown paths are answered here, every call goes to connect-node (compressed responses). */
  readonly answerCalls?: boolean;
  /** The connection object of a session (one per session, shared with connect-node's calls). */
  readonly connectionOf: (session: http2.ServerHttp2Session) => GrpcConnection;
  readonly onError: (err: Error) => void;
}

function headersObject(h: Headers, into: http2.OutgoingHttpHeaders): http2.OutgoingHttpHeaders {
  for (const [k, v] of h) into[k] = v;
  return into;
}

/** A ConnectError for anything a handler or interceptor threw (as connect-node: not ours → Internal). */
function asConnectError(e: unknown): ConnectError {
  return e instanceof ConnectError ? e : new ConnectError('internal error', Code.Internal, undefined, undefined, e);
}

/**
 * The HandlerContext of one call. Its accessors live on this class, not in an object literal made
 * per call: V8 gives every object literal with a getter a hidden class of its own, kept in old
 * space, and that hidden class holds the getter's closure, and through it the whole call's state,
 * alive across every scavenge until the next full GC. With literals here, about 10 KB per
 * NewJWTSVID call outlived the young generation; the server then ran a full GC every ~2 s.
 */
class DirectContext implements HandlerContext {
  readonly method: DescMethod;
  readonly service: DescService;
  readonly requestMethod = 'POST';
  readonly protocolName = 'grpc';
  readonly url: string;
  readonly values: ContextValues;
  readonly responseHeader = new Headers();
  readonly responseTrailer = new Headers();
  /** The call's cancellation; its AbortSignal is made only if someone reads `signal`. */
  readonly call = new CallAbort();
  readonly #headers: http2.IncomingHttpHeaders;
  readonly #deadline: number | undefined;
  #requestHeader: Headers | undefined;

  constructor(method: DescMethod, url: string, headers: http2.IncomingHttpHeaders, values: ContextValues, deadline: number | undefined) {
    this.method = method;
    this.service = method.parent;
    this.url = url;
    this.values = values;
    this.#headers = headers;
    this.#deadline = deadline;
  }

  get signal(): AbortSignal {
    return this.call.signal;
  }
  /** Converted to fetch Headers on first use (most calls never look). */
  get requestHeader(): Headers {
    return (this.#requestHeader ??= fetchHeaders(this.#headers));
  }
  readonly timeoutMs = (): number | undefined => (this.#deadline === undefined ? undefined : this.#deadline - performance.now());
}

/**
 * What interceptors see of a request; `signal` and `header` are prototype getters for the same
 * reason as DirectContext's (so an interceptor that copies a request with a spread must name them).
 */
class DirectRequest<R extends UnaryRequest | StreamRequest> {
  readonly stream: R['stream'];
  readonly service: DescService;
  readonly method: R['method'];
  readonly requestMethod = 'POST';
  readonly url: string;
  readonly contextValues: ContextValues;
  readonly message: R['message'];
  readonly #ctx: DirectContext;

  constructor(ctx: DirectContext, stream: R['stream'], message: R['message']) {
    this.#ctx = ctx;
    this.stream = stream;
    this.service = ctx.service;
    this.method = ctx.method as R['method'];
    this.url = ctx.url;
    this.contextValues = ctx.values;
    this.message = message;
  }

  get signal(): AbortSignal {
    return this.#ctx.signal;
  }
  get header(): Headers {
    return this.#ctx.requestHeader;
  }
}

/**
 * The direct path. `take(stream, headers)` returns false for calls it leaves to connect-node;
 * otherwise the call is answered here.
 */
export function directCalls(
  routes: RecordedRoutes,
  o: DirectCallsOptions,
): {
  take: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;
  shutdown: () => void;
} {
  const specs = routes.direct;
  const active = new Set<CallAbort>();
  let shuttingDown = false;
  const connectionOf = o.connectionOf;

  const trailersOf = (e: ConnectError | undefined, extra: Headers | undefined): http2.OutgoingHttpHeaders => {
    const h = new Headers(extra);
    if (e === undefined) h.set('grpc-status', '0');
    else setTrailerStatus(h, e);
    // grpc-message percent-encoded and details in grpc-status-details-bin, as connect-node sends them.
    return headersObject(h, {});
  };

  /** An error before any response header went out: a trailers-only response. */
  const failEarly = (stream: http2.ServerHttp2Stream, e: ConnectError, header?: Headers): void => {
    if (stream.destroyed || stream.closed) return;
    if (stream.headersSent) {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const h: http2.OutgoingHttpHeaders = { ...GRPC_OK_HEADERS };
    if (header !== undefined) headersObject(header, h);
    stream.respond({ ...h, ...trailersOf(e, undefined) }, { endStream: true });
  };

  const run = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, spec: UnarySpec, path: string, body: Buffer): void => {
    if (shuttingDown) {
      failEarly(stream, SHUTDOWN);
      return;
    }
    let message: MessageShape<DescMessage>;
    let contextValues: ContextValues | undefined;
    try {
      const payload = unaryRequestPayload(headers, body, o.readMaxBytes);
      try {
        message = fromBinary(spec.method.input, payload);
      } catch (e) {
        throw new ConnectError(`parse binary: ${(e as Error).message}`, Code.InvalidArgument);
      }
      contextValues = o.contextValues?.(connectionOf(stream.session as http2.ServerHttp2Session), headers);
    } catch (e) {
      failEarly(stream, asConnectError(e));
      return;
    }
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout']);
    const ctx = new DirectContext(
      spec.method,
      `http://${String(headers[':authority'] ?? 'localhost')}${path}`,
      headers,
      contextValues ?? createContextValues(),
      timeoutMs === undefined ? undefined : performance.now() + timeoutMs,
    );
    const call = ctx.call;
    active.add(call);
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const onClose = (): void => call.abort(CANCELLED);
    stream.once('close', onClose);
    const end = (): void => {
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      active.delete(call);
      stream.off('close', onClose);
      call.abort(COMPLETED);
    };
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        if (done) return;
        const e = new ConnectError('the operation timed out', Code.DeadlineExceeded);
        call.abort(e);
        // A stream ends itself on the abort (runStream); a unary call is answered here.
        if (spec.kind !== 'unary') return;
        end();
        failEarly(stream, e);
      }, timeoutMs);
    }
    if (spec.kind === 'server_streaming') {
      runStream({ stream, spec, ctx, message, end, isDone: () => done });
      return;
    }
    const service: DescService = spec.method.parent;
    const { responseHeader, responseTrailer } = ctx;
    const impl = async (req: UnaryRequest | { message: unknown }): Promise<UnaryResponse> => {
      const out = await spec.impl(req.message as never, ctx);
      const msg = isMessage(out, spec.method.output) ? out : create(spec.method.output, out as never);
      return { stream: false, service, method: spec.method as never, header: responseHeader, trailer: responseTrailer, message: msg };
    };
    let next = impl as (req: UnaryRequest) => Promise<UnaryResponse>;
    for (let i = o.interceptors.length - 1; i >= 0; i--) next = o.interceptors[i]!(next as never) as (req: UnaryRequest) => Promise<UnaryResponse>;
    const req: UnaryRequest = new DirectRequest<UnaryRequest>(ctx, false, message);
    let pending: Promise<UnaryResponse>;
    try {
      pending = next(req);
    } catch (e) {
      // An interceptor that throws instead of rejecting (connect-node awaits it: the same answer).
      pending = Promise.reject(e);
    }
    pending.then(
      (res) => {
        if (done) return;
        end();
        if (stream.destroyed || stream.closed) return;
        let bytes: Uint8Array;
        try {
          bytes = encodingOf(res.message) ?? toBinary(spec.method.output, res.message);
          if (bytes.length > o.writeMaxBytes)
            throw new ConnectError(`message size ${bytes.length} is larger than configured writeMaxBytes ${o.writeMaxBytes}`, Code.ResourceExhausted);
        } catch (e) {
          failEarly(stream, asConnectError(e), res.header);
          return;
        }
        const h: http2.OutgoingHttpHeaders = { ...GRPC_OK_HEADERS };
        headersObject(res.header, h);
        stream.respond(h, { waitForTrailers: true });
        stream.once('wantTrailers', () => {
          if (!stream.destroyed) stream.sendTrailers(trailersOf(undefined, res.trailer));
        });
        if (bytes.length < LARGE) stream.end(grpcFrame(bytes));
        else {
          // Large (often cached) answers are not copied behind a prefix: two writes, same frames.
          stream.write(grpcPrefix(bytes.length));
          stream.end(bytes);
        }
      },
      (e: unknown) => {
        if (done) return;
        const aborted = call.reason;
        end();
        failEarly(stream, aborted instanceof ConnectError && aborted !== COMPLETED ? aborted : asConnectError(e), responseHeader);
      },
    );
  };

  /** A server-streaming call: the handler's messages as they come, with backpressure; then trailers. */
  const runStream = (c: {
    stream: http2.ServerHttp2Stream;
    spec: UnarySpec;
    ctx: DirectContext;
    message: MessageShape<DescMessage>;
    end: () => void;
    isDone: () => boolean;
  }): void => {
    const { stream, spec, ctx } = c;
    const call = ctx.call;
    const service: DescService = spec.method.parent;
    const output = spec.method.output;
    const impl = async (req: StreamRequest): Promise<StreamResponse> => {
      let input: unknown;
      for await (const m of req.message) {
        input = m;
        break;
      }
      const produced = (spec.impl as (i: never, h: HandlerContext) => AsyncIterable<unknown>)(input as never, ctx);
      const messages = (async function* () {
        for await (const out of produced) yield isMessage(out, output) ? out : create(output, out as never);
      })();
      return { stream: true, service, method: spec.method as never, header: ctx.responseHeader, trailer: ctx.responseTrailer, message: messages };
    };
    let next = impl as (req: StreamRequest) => Promise<StreamResponse>;
    for (let i = o.interceptors.length - 1; i >= 0; i--) next = o.interceptors[i]!(next as never) as (req: StreamRequest) => Promise<StreamResponse>;
    const single = c.message;
    const req: StreamRequest = new DirectRequest<StreamRequest>(
      ctx,
      true,
      (async function* () {
        yield single;
      })(),
    );
    const aborted = new Promise<'aborted'>((resolve) => {
      if (call.aborted) resolve('aborted');
      else call.signal.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    let trailers: http2.OutgoingHttpHeaders = { 'grpc-status': '0' };
    let headersOut = false;
    const sendHeaders = (header: Headers): void => {
      const h: http2.OutgoingHttpHeaders = { ...GRPC_OK_HEADERS };
      headersObject(header, h);
      stream.respond(h, { waitForTrailers: true });
      stream.once('wantTrailers', () => {
        if (!stream.destroyed) stream.sendTrailers(trailers);
      });
      headersOut = true;
    };
    const finish = (err: ConnectError | undefined, header: Headers, trailer: Headers | undefined): void => {
      c.end();
      if (stream.destroyed || stream.closed) return;
      if (!headersOut) {
        if (err !== undefined) {
          failEarly(stream, err, header);
          return;
        }
        sendHeaders(header);
      }
      trailers = trailersOf(err, err === undefined ? trailer : undefined);
      stream.end();
    };
    void (async () => {
      let res: StreamResponse;
      try {
        res = await next(req);
      } catch (e) {
        if (!c.isDone())
          finish(call.reason instanceof ConnectError && call.reason !== COMPLETED ? call.reason : asConnectError(e), ctx.responseHeader, undefined);
        return;
      }
      const it = res.message[Symbol.asyncIterator]();
      try {
        for (;;) {
          const r = await Promise.race([it.next(), aborted]);
          if (r === 'aborted') {
            void it.return?.().catch(() => undefined);
            const reason: unknown = call.reason;
            // The client went away: nothing to answer. Deadline or shutdown: say so.
            finish(reason === CANCELLED ? undefined : asConnectError(reason), res.header, res.trailer);
            return;
          }
          if (r.done === true) break;
          if (stream.destroyed || stream.closed) {
            void it.return?.().catch(() => undefined);
            break;
          }
          const bytes = encodingOf(r.value as Message) ?? toBinary(output, r.value as never);
          if (bytes.length > o.writeMaxBytes)
            throw new ConnectError(`message size ${bytes.length} is larger than configured writeMaxBytes ${o.writeMaxBytes}`, Code.ResourceExhausted);
          if (!headersOut) sendHeaders(res.header);
          // Backpressure: a client that does not read must not grow our buffers without bound.
          if (!stream.write(grpcFrame(bytes))) {
            await new Promise<void>((resolve) => {
              const go = (): void => {
                stream.off('drain', go);
                stream.off('close', go);
                resolve();
              };
              stream.on('drain', go);
              stream.on('close', go);
            });
          }
        }
        finish(undefined, res.header, res.trailer);
      } catch (e) {
        finish(asConnectError(e), res.header, undefined);
      }
    })();
  };

  const take = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean => {
    if (headers[':method'] !== 'POST') return false;
    const path = headers[':path'];
    const ct = headers['content-type'];
    if (typeof path !== 'string' || typeof ct !== 'string') return false;
    // A call that arrives while the server closes (sent before the client saw our GOAWAY) is told
    // so, retryably, by either path: connect-node's handler, its shutdown signal already aborted,
    // would leave it open until the connection is destroyed (the client then sees CANCEL).
    if (shuttingDown && /^application\/grpc(?:[+;]|$)/i.test(ct)) {
      stream.on('error', o.onError);
      stream.resume();
      failEarly(stream, SHUTDOWN);
      return true;
    }
    // A gRPC call (any codec) to a path nothing serves: a proper gRPC status, as grpc-go answers,
    // never connect-node's HTTP 404 (which grpc-go clients report as a malformed response).
    if (!routes.paths.has(path) && /^application\/grpc(?:[+;]|$)/i.test(ct)) {
      stream.on('error', o.onError);
      stream.resume();
      failEarly(stream, unknownPathError(path, routes.services));
      return true;
    }
    if (o.answerCalls === false || !isGrpcProtoContentType(ct)) return false;
    const spec = specs.get(path);
    if (spec === undefined) return false;
    const enc = headers['grpc-encoding'];
    if (enc !== undefined && enc !== 'identity' && enc !== 'gzip' && enc !== 'deflate') return false;
    stream.on('error', o.onError);
    collectRequestBody(stream, o.readMaxBytes, (body) => {
      if (body === undefined) {
        failEarly(stream, new ConnectError(`message size is larger than configured readMaxBytes ${o.readMaxBytes}`, Code.ResourceExhausted));
        return;
      }
      try {
        run(stream, headers, spec, path, body);
      } catch (e) {
        o.onError(e instanceof Error ? e : new Error(String(e)));
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    return true;
  };

  const shutdown = (): void => {
    shuttingDown = true;
    for (const call of active) call.abort(SHUTDOWN);
  };
  return { take, shutdown };
}
