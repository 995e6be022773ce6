// A small gRPC server (HTTP/2, unary and server-streaming methods only) written directly on
// node:http2 streams, for the Workload API: one call costs a fraction of what connect-node over the
// http2 compatibility layer costs (that stack alone capped the agent below the SPIRE agent's call
// rate). Wire behaviour follows the gRPC over HTTP/2 spec: length-prefixed messages, gzip/deflate
// request compression accepted, responses uncompressed, grpc-timeout honoured, trailers-only
// responses for errors before the first message, percent-encoded grpc-message.
import * as fs from 'node:fs/promises';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { Code, ConnectError } from '@connectrpc/connect';
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import {
  GRPC_OK_HEADERS,
  acceptAnyAuthority,
  acceptedSocketOf,
  bindGrpcServer,
  collectRequestBody,
  encodeGrpcMessage,
  grpcFrame,
  isGrpcProtoContentType,
  parseGrpcTimeout,
  unaryRequestPayload,
  type GrpcServer,
} from '@ztwim/proto';

/** What a handler sees of its call. */
export interface RawCallContext<P> {
  /** Aborted when the client cancels, the deadline passes or the server closes. */
  readonly signal: AbortSignal;
  readonly header: http2.IncomingHttpHeaders;
  /** The connection's value from `sessionValue` (e.g. its pinned peer). */
  readonly peer: P;
}

/** A response given as already-encoded message bytes (e.g. cached), skipping create/toBinary. */
export class EncodedMessage {
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) { this.bytes = bytes; }
}

type Out<O extends DescMessage> = MessageInitShape<O> | EncodedMessage;

export type RawMethod<P> =
  | {
    readonly method: DescMethod;
    readonly unary: (req: MessageShape<DescMessage>, ctx: RawCallContext<P>) => Promise<Out<DescMessage>> | Out<DescMessage>;
  }
  | {
    readonly method: DescMethod;
    readonly stream: (req: MessageShape<DescMessage>, ctx: RawCallContext<P>) => AsyncIterable<Out<DescMessage>>;
  };

/** Typed helpers to declare methods. */
export function unary<I extends DescMessage, O extends DescMessage, P>(
  method: DescMethod & { input: I; output: O },
  fn: (req: MessageShape<I>, ctx: RawCallContext<P>) => Promise<Out<O>> | Out<O>,
): RawMethod<P> {
  return { method, unary: fn as never };
}
export function serverStream<I extends DescMessage, O extends DescMessage, P>(
  method: DescMethod & { input: I; output: O },
  fn: (req: MessageShape<I>, ctx: RawCallContext<P>) => AsyncIterable<Out<O>>,
): RawMethod<P> {
  return { method, stream: fn as never };
}

export interface RawGrpcServerOptions<P> {
  readonly path: string;
  readonly mode?: number;
  readonly methods: readonly RawMethod<P>[];
  /** Runs before every call of a method for which `guard` returns an error: the call fails with it. */
  readonly guard?: (method: DescMethod, header: http2.IncomingHttpHeaders) => ConnectError | undefined;
  /** Computed once per connection, with its Unix socket, when it is accepted. */
  readonly sessionValue: (socket: net.Socket) => P;
  /** Largest accepted request message (default 4 MiB). */
  readonly readMaxBytes?: number;
  readonly onError?: (err: Error) => void;
}

// Reasons shared by every aborted call (a DOMException per abort is costly and carries nothing).
const CANCELLED = new ConnectError('call cancelled', Code.Canceled);
const SHUTDOWN = new ConnectError('server is shutting down', Code.Unavailable);

function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

interface Route<P> { readonly m: RawMethod<P>; readonly input: DescMessage; readonly output: DescMessage }

export async function startRawGrpcServer<P>(o: RawGrpcServerOptions<P>): Promise<GrpcServer> {
  const routes = new Map<string, Route<P>>();
  for (const m of o.methods) routes.set(`/${m.method.parent.typeName}/${m.method.name}`, { m, input: m.method.input, output: m.method.output });
  const readMax = o.readMaxBytes ?? 4 << 20;
  const onError = o.onError ?? ((): void => {});
  const values = new WeakMap<http2.ServerHttp2Session, { v: P }>();
  const active = new Set<AbortController>();
  let shuttingDown = false;

  // Taken at accept (the session starts only once the authority layer has seen the first request).
  const atAccept = new WeakMap<net.Socket, { v: P }>();
  const valueOf = (session: http2.ServerHttp2Session): P => {
    let v = values.get(session);
    if (v === undefined) {
      const socket = acceptedSocketOf(session);
      v = (socket === undefined ? undefined : atAccept.get(socket)) ?? { v: o.sessionValue(socket ?? (session.socket as net.Socket)) };
      values.set(session, v);
    }
    return v.v;
  };

  const encode = (r: Route<P>, out: Out<DescMessage>): Buffer =>
    grpcFrame(out instanceof EncodedMessage ? out.bytes : toBinary(r.output, create(r.output, out as never)));

  const failEarly = (stream: http2.ServerHttp2Stream, code: Code, message: string): void => {
    if (stream.destroyed || stream.closed) return;
    if (stream.headersSent) {
      // Only reachable for streams whose headers went out: end with trailers.
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    stream.respond({ ...GRPC_OK_HEADERS, 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) }, { endStream: true });
  };

  const statusOf = (e: unknown): { code: Code; message: string } => {
    if (e instanceof ConnectError) return { code: e.code, message: e.rawMessage };
    return { code: Code.Unknown, message: e instanceof Error ? e.message : String(e) };
  };

  const decode = (r: Route<P>, headers: http2.IncomingHttpHeaders, body: Buffer): MessageShape<DescMessage> => {
    const payload = unaryRequestPayload(headers, body, readMax);
    try {
      return fromBinary(r.input, payload);
    } catch {
      throw new ConnectError('cannot decode request message', Code.InvalidArgument);
    }
  };

  const run = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, r: Route<P>, body: Buffer): void => {
    if (shuttingDown) { failEarly(stream, Code.Unavailable, SHUTDOWN.rawMessage); return; }
    let req: MessageShape<DescMessage>;
    let peer: P;
    try {
      const denied = o.guard?.(r.m.method, headers);
      if (denied !== undefined) throw denied;
      req = decode(r, headers, body);
      peer = valueOf(stream.session as http2.ServerHttp2Session);
    } catch (e) {
      const s = statusOf(e);
      failEarly(stream, s.code, s.message);
      return;
    }
    const ac = new AbortController();
    active.add(ac);
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout']);
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        ac.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded));
        finish(Code.DeadlineExceeded, 'the operation timed out');
      }, timeoutMs);
    }
    const onClose = (): void => { if (!ac.signal.aborted) ac.abort(CANCELLED); };
    stream.once('close', onClose);
    let done = false;
    let trailers: http2.OutgoingHttpHeaders = { 'grpc-status': '0' };
    const finish = (code: Code | 0, message?: string): void => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      active.delete(ac);
      stream.off('close', onClose);
      if (stream.destroyed || stream.closed) return;
      if (!stream.headersSent) {
        if (code !== 0) { failEarly(stream, code, message ?? ''); return; }
      }
      trailers = code === 0 ? { 'grpc-status': '0' } : { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message ?? '') };
      stream.end();
    };
    const ctx: RawCallContext<P> = { signal: ac.signal, header: headers, peer };
    const sendHeaders = (): void => {
      stream.respond(GRPC_OK_HEADERS, { waitForTrailers: true });
      stream.once('wantTrailers', () => { if (!stream.destroyed) stream.sendTrailers(trailers); });
    };
    const fail = (e: unknown): void => {
      if (done) return;
      if (ac.signal.aborted && ac.signal.reason === CANCELLED) { finish(Code.Canceled, CANCELLED.rawMessage); return; }
      const s = statusOf(e);
      finish(s.code, s.message);
    };
    const m = r.m;
    if ('unary' in m) {
      const ok = (out: Out<DescMessage>): void => {
        if (done || stream.destroyed || stream.closed) { finish(Code.Canceled); return; }
        let f: Buffer;
        try { f = encode(r, out); } catch (e) { fail(e); return; }
        sendHeaders();
        stream.write(f);
        finish(0);
      };
      let res: Promise<Out<DescMessage>> | Out<DescMessage>;
      try { res = m.unary(req, ctx); } catch (e) { fail(e); return; }
      if (res instanceof Promise) res.then(ok, fail);
      else ok(res);
      return;
    }
    void (async () => {
      try {
        for await (const out of m.stream(req, ctx)) {
          if (done || stream.destroyed || stream.closed) break;
          const f = encode(r, out);
          if (!stream.headersSent) sendHeaders();
          // Backpressure: a client that does not read must not grow our buffers without bound.
          if (!stream.write(f)) await new Promise<void>((res) => {
            const go = (): void => { stream.off('drain', go); stream.off('close', go); res(); };
            stream.on('drain', go);
            stream.on('close', go);
          });
        }
        // Server shutdown (or a deadline) ended the stream: report it rather than a clean end.
        if (ac.signal.aborted && ac.signal.reason !== CANCELLED) fail(ac.signal.reason);
        else finish(0);
      } catch (e) {
        fail(e);
      }
    })();
  };

  const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    stream.on('error', onError);
    const path = headers[':path'];
    const ct = headers['content-type'];
    if (headers[':method'] !== 'POST' || !isGrpcProtoContentType(ct)) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const r = typeof path === 'string' ? routes.get(path) : undefined;
    if (r === undefined) {
      stream.resume();
      failEarly(stream, Code.Unimplemented, `unknown method ${String(path)}`);
      return;
    }
    collectRequestBody(stream, readMax, (body) => {
      if (body === undefined) { failEarly(stream, Code.ResourceExhausted, `request message larger than ${readMax} bytes`); return; }
      run(stream, headers, r, body);
    });
  };

  const server = http2.createServer({});
  acceptAnyAuthority(server, {
    onAccept: (socket) => {
      try { atAccept.set(socket, { v: o.sessionValue(socket) }); } catch (e) { onError(e instanceof Error ? e : new Error(String(e))); }
    },
  });
  server.on('stream', onStream);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', onError);
    try { valueOf(s); } catch (e) { onError(e instanceof Error ? e : new Error(String(e))); }
  });
  server.on('sessionError', onError);

  const address = await bindGrpcServer(server, o.mode === undefined ? { path: o.path } : { path: o.path, mode: o.mode });
  let closing: Promise<void> | undefined;
  const close = (c: { graceMs?: number } = {}): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const ac of active) ac.abort(SHUTDOWN);
      for (const s of sessions) s.close();
      const timer = setTimeout(() => { for (const s of sessions) s.destroy(); }, c.graceMs ?? 5000);
      try { await closed; } finally { clearTimeout(timer); }
      await fs.unlink(o.path).catch((e: unknown) => { if (errnoOf(e) !== 'ENOENT') throw e; });
    })();
    return closing;
  };
  return { address, httpServer: server, close };
}
