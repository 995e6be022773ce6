// Unary gRPC calls made directly on an HTTP/2 stream of connect-node's session manager, with the
// transport's interceptors. connect-node's client runs every unary call through a chain of async
// iterables, abort controllers and Headers conversions; in an agent profile of FetchJWTSVID with a
// new audience per call (one NewJWTSVID to the server each) that machinery was about a quarter of
// the agent's busy time and most of its garbage. Streaming calls keep using connect-node.
import * as http2 from 'node:http2';
import * as zlib from 'node:zlib';
import {
  Code,
  ConnectError,
  createContextValues,
  type ContextValues,
  type Interceptor,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from '@connectrpc/connect';
import { codeFromHttpStatus, findTrailerError } from '@connectrpc/connect/protocol-grpc';
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape } from '@bufbuild/protobuf';
import type { Http2SessionManager } from '@connectrpc/connect-node';
import { GRPC_HDR, fetchHeaders, grpcFrame } from './grpc-wire.ts';
import { dialErrorOf, withDialCode } from './dial-error.ts';

export interface DirectCallsClientOptions {
  readonly sessionManager: Http2SessionManager;
  /** e.g. `https://127.0.0.1:8081` (the method path is appended). */
  readonly baseUrl: string;
  readonly interceptors?: readonly Interceptor[];
  readonly defaultTimeoutMs?: number;
  /** Largest response message accepted (default 4 GiB - 1, as connect-es). */
  readonly readMaxBytes?: number;
}

const CANCEL = http2.constants.NGHTTP2_CANCEL;

/** A node/http2 failure as a ConnectError, with the codes connect-node gives them. */
function fromNodeError(e: unknown): ConnectError {
  if (e instanceof ConnectError && e.code !== Code.Internal) return e;
  const codes: string[] = [];
  for (let r: unknown = e, i = 0; r instanceof Error && i < 8; r = (r as { cause?: unknown }).cause, i++) {
    const c = (r as { code?: unknown }).code;
    if (typeof c === 'string') codes.push(c);
  }
  let code = Code.Internal;
  if (codes.some((c) => c === 'ERR_STREAM_WRITE_AFTER_END' || c === 'ERR_STREAM_DESTROYED' || c === 'ERR_HTTP2_INVALID_STREAM' || c === 'ECONNRESET'))
    code = Code.Aborted;
  else if (codes.some((c) => c === 'ETIMEDOUT' || c === 'ENOTFOUND' || c === 'EAI_AGAIN' || c === 'ECONNREFUSED')) code = Code.Unavailable;
  // A socket that cannot be reached is Unavailable (as in grpc-go), also where connect-node's
  // session manager already made it an Internal ConnectError.
  if (dialErrorOf(e) !== undefined) return withDialCode(e);
  if (e instanceof ConnectError) return code === Code.Unavailable ? new ConnectError(e.rawMessage, code, e.metadata, undefined, e.cause) : e;
  const ce = ConnectError.from(e, code);
  if (ce !== e) ce.cause = e;
  return ce;
}

/** The status an HTTP/2 reset stands for, when the server reset the stream without a gRPC status. */
function fromResetCode(rst: number): ConnectError {
  const name = `http/2 stream closed with error code 0x${rst.toString(16)}`;
  switch (rst) {
    case http2.constants.NGHTTP2_REFUSED_STREAM:
      return new ConnectError(name, Code.Unavailable);
    case http2.constants.NGHTTP2_CANCEL:
      return new ConnectError(name, Code.Canceled);
    case http2.constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return new ConnectError(name, Code.ResourceExhausted);
    case http2.constants.NGHTTP2_INADEQUATE_SECURITY:
    case http2.constants.NGHTTP2_HTTP_1_1_REQUIRED:
      return new ConnectError(name, Code.PermissionDenied);
    default:
      return new ConnectError(name, Code.Internal);
  }
}

/** The `unary` half of a Transport, answered on the session manager's HTTP/2 streams. */
export function directCallsClient(o: DirectCallsClientOptions): Transport['unary'] {
  const readMax = o.readMaxBytes ?? 0xffffffff;
  const interceptors = o.interceptors ?? [];

  const send = (req: UnaryRequest, timeoutMs: number | undefined): Promise<UnaryResponse> => {
    const method = req.method;
    const path = `/${method.parent.typeName}/${method.name}`;
    const headers: http2.OutgoingHttpHeaders = { 'content-type': 'application/grpc+proto', te: 'trailers', 'user-agent': 'ztwim-grpc' };
    for (const [k, v] of req.header) headers[k] = v;
    if (timeoutMs !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.ceil(timeoutMs))}m`;
    const body = grpcFrame(toBinary(method.input, req.message));
    return new Promise<UnaryResponse>((resolve, reject) => {
      let stream: http2.ClientHttp2Stream | undefined;
      let settled = false;
      const settle = (e: ConnectError | undefined, res?: UnaryResponse): void => {
        if (settled) return;
        settled = true;
        req.signal.removeEventListener('abort', onAbort);
        if (e !== undefined) {
          if (stream !== undefined && !stream.closed && !stream.destroyed) stream.close(CANCEL);
          reject(e);
        } else resolve(res as UnaryResponse);
      };
      const abortError = (): ConnectError => {
        const r: unknown = req.signal.reason;
        return r instanceof ConnectError ? r : ConnectError.from(r, Code.Canceled);
      };
      const onAbort = (): void => settle(abortError());
      if (req.signal.aborted) {
        onAbort();
        return;
      }
      req.signal.addEventListener('abort', onAbort);
      o.sessionManager.request('POST', path, headers, {}).then(
        (s) => {
          stream = s;
          if (settled) {
            s.close(CANCEL);
            return;
          }
          let status = 0;
          let header = new Headers();
          let trailer: Headers | undefined;
          let first: Buffer | undefined;
          let chunks: Buffer[] | undefined;
          let size = 0;
          const onResponse = (h: http2.IncomingHttpHeaders): void => {
            status = Number(h[':status']);
            header = fetchHeaders(h);
          };
          const onData = (c: Buffer): void => {
            o.sessionManager.notifyResponseByteRead(s);
            size += c.length;
            if (size > readMax + GRPC_HDR) {
              settle(new ConnectError(`message size is larger than configured readMaxBytes ${readMax}`, Code.ResourceExhausted));
              return;
            }
            if (first === undefined) first = c;
            else (chunks ??= [first]).push(c);
          };
          const onTrailers = (t: http2.IncomingHttpHeaders): void => {
            trailer = fetchHeaders(t);
          };
          const onError = (e: Error): void => {
            if (req.signal.aborted) settle(abortError());
            // A reset from the server: its code says what happened (as connect-node maps it).
            else if ((e as { code?: unknown }).code === 'ERR_HTTP2_STREAM_ERROR' && s.rstCode !== undefined && s.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
              settle(fromResetCode(s.rstCode));
            else settle(fromNodeError(e));
          };
          const onClose = (): void => {
            // Nothing is emitted after 'close': let go of the call. Node 20's ClientHttp2Session
            // keeps every stream it made reachable from old space until the next full GC (request()
            // binds an AsyncResource, whose deprecated `asyncResource` accessor gives the bound
            // function a hidden class of its own); our listeners would keep this whole call, its
            // response and the promise chain waiting on it alive as long.
            s.off('response', onResponse);
            s.off('data', onData);
            s.off('trailers', onTrailers);
            s.off('error', onError);
            s.off('close', onClose);
            if (settled) return;
            if (req.signal.aborted) {
              settle(abortError());
              return;
            }
            if (status === 0) {
              settle(
                s.rstCode !== undefined && s.rstCode !== http2.constants.NGHTTP2_NO_ERROR
                  ? fromResetCode(s.rstCode)
                  : new ConnectError('stream closed without a response', Code.Unavailable),
              );
              return;
            }
            if (status !== 200) {
              settle(new ConnectError(`HTTP ${status}`, codeFromHttpStatus(status), header));
              return;
            }
            // Trailers-only responses carry the status in the headers.
            const t = trailer ?? (header.has('grpc-status') ? header : undefined);
            if (t === undefined) {
              settle(
                s.rstCode !== undefined && s.rstCode !== http2.constants.NGHTTP2_NO_ERROR
                  ? fromResetCode(s.rstCode)
                  : new ConnectError('protocol error: missing trailer', Code.Internal),
              );
              return;
            }
            const err = findTrailerError(t);
            if (err !== undefined) {
              settle(err);
              return;
            }
            try {
              const all = chunks !== undefined ? Buffer.concat(chunks) : (first ?? Buffer.alloc(0));
              if (all.length < GRPC_HDR) throw new ConnectError('protocol error: missing output message for unary method', Code.Unimplemented);
              const len = all.readUInt32BE(1);
              if (GRPC_HDR + len !== all.length)
                throw new ConnectError('protocol error: expected exactly one output message for unary method', Code.Unimplemented);
              let payload: Uint8Array = all.subarray(GRPC_HDR);
              if ((all[0]! & 1) === 1) {
                const enc = header.get('grpc-encoding');
                if (enc === 'gzip') payload = zlib.gunzipSync(payload, { maxOutputLength: readMax });
                else if (enc === 'deflate') payload = zlib.inflateSync(payload, { maxOutputLength: readMax });
                else throw new ConnectError(`protocol error: received compressed message with encoding ${String(enc)}`, Code.Internal);
              }
              const message = fromBinary(method.output, payload);
              settle(undefined, { stream: false, service: method.parent, method, header, trailer: t, message });
            } catch (e) {
              settle(e instanceof ConnectError ? e : new ConnectError(`parse binary: ${(e as Error).message}`, Code.Internal));
            }
          };
          s.on('response', onResponse);
          s.on('data', onData);
          s.on('trailers', onTrailers);
          s.on('error', onError);
          s.on('close', onClose);
          s.end(body);
        },
        (e: unknown) => settle(fromNodeError(e)),
      );
    });
  };

  return async <I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> => {
    // As connect-es: no timeout given → the default; zero or negative → none.
    const t = timeoutMs === undefined ? o.defaultTimeoutMs : timeoutMs <= 0 ? undefined : timeoutMs;
    const ac = new AbortController();
    const onOuter = (): void => ac.abort(ConnectError.from(signal?.reason, Code.Canceled));
    if (signal !== undefined) {
      if (signal.aborted) onOuter();
      else signal.addEventListener('abort', onOuter, { once: true });
    }
    const timer = t === undefined ? undefined : setTimeout(() => ac.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded)), t);
    const req: UnaryRequest<I, O> = {
      stream: false,
      service: method.parent,
      method,
      requestMethod: 'POST',
      url: `${o.baseUrl}/${method.parent.typeName}/${method.name}`,
      signal: ac.signal,
      header: new Headers(header),
      contextValues: contextValues ?? createContextValues(),
      message: isMessage(input, method.input) ? input : create(method.input, input),
    };
    let next = ((r: UnaryRequest) => send(r, t)) as (r: UnaryRequest) => Promise<UnaryResponse>;
    for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next as never) as (r: UnaryRequest) => Promise<UnaryResponse>;
    try {
      return (await next(req as unknown as UnaryRequest)) as unknown as UnaryResponse<I, O>;
    } catch (e) {
      throw ConnectError.from(e);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onOuter);
    }
  };
}
