/**
 * A lean gRPC client for the Workload API: one HTTP/2 connection per channel (over a Unix socket
 * or TCP), reconnected on the next call after it is lost; unary and server-streaming calls with
 * gRPC's length-prefixed framing; messages encoded and decoded with the SDK's protobuf-es schemas.
 * HTTP/2 itself comes from a Transport: the SDK's own client on `net.Socket` (h2-connection.ts,
 * the default) or `node:http2` (node-h2-transport.ts).
 *
 * Written here rather than taken from connect-node: its generic layers (interceptor chain,
 * envelope streams, async-iterable plumbing, header objects) cost about four times the CPU of the
 * call itself, measured through `bench/sdk.ts` (1.2–1.8 ms of client CPU per cached
 * FetchJWTSVID, against 0.3 ms for the same call framed by hand on `node:http2`). The Workload
 * API needs only this small slice of gRPC: no compression, no client streaming, and no retries
 * but gRPC's transparent one: a call the server never processed (its stream refused, or above
 * the last stream id of the server's GOAWAY, as a server draining a connection sends) is sent
 * again once, on a new connection after a GOAWAY, instead of failing Unavailable.
 */
import * as net from 'node:net';
import { fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { create } from '@bufbuild/protobuf';
import { SpiffeError } from '../errors.ts';
import { BoundedCache } from '../internal/bounded-cache.ts';
import { H2Code, socketTransport } from './h2-connection.ts';
import { nodeHttp2Transport } from './node-h2-transport.ts';
import type { Dialer, HeaderMap, StreamEvents, Transport, TransportSession, TransportStream } from './transport.ts';

/** gRPC status codes used by the transport (numeric values as on the wire). */
const Status = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  DeadlineExceeded: 4,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  Unauthenticated: 16,
} as const;

/** gRPC's default limit on a received message (grpc-go `defaultServerMaxReceiveMessageSize`, client side alike). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * A call that ended without status OK: the gRPC status code and message (percent-decoded), or a
 * transport failure mapped to a status the way grpc-go maps it (a lost connection is Unavailable).
 */
export class GrpcCallError extends SpiffeError {
  readonly grpcCode: number;
  readonly grpcMessage: string;

  constructor(grpcCode: number, grpcMessage: string, cause?: unknown) {
    super('ERR_WORKLOAD_API', grpcMessage, { cause });
    this.grpcCode = grpcCode;
    this.grpcMessage = grpcMessage;
  }
}

/** What an interceptor sees of a request: its method path, headers (mutable) and signal. */
export interface GrpcRequest {
  /** `/package.Service/Method`. */
  readonly path: string;
  readonly header: Headers;
  readonly signal: AbortSignal;
}

/** Wraps the sending of a request (tests use it to alter headers). */
export type GrpcInterceptor = (next: (req: GrpcRequest) => Promise<void>) => (req: GrpcRequest) => Promise<void>;

export interface GrpcChannelOptions {
  /**
   * Opens the byte stream for a new session (Unix socket or TCP). The SDK's transport passes
   * `onread` (net.connect's option: reads into one reused buffer, no stream machinery); a dialer
   * may ignore it, the socket's 'data' events are read then.
   */
  readonly connect: Dialer;
  /** The `:authority` of requests (e.g. `localhost`). */
  readonly authority: string;
  /** Headers sent with every request (e.g. `workload.spiffe.io: true`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Largest message accepted from the server (default 4 MiB); a larger one fails the call with ResourceExhausted. */
  readonly maxMessageBytes?: number;
  readonly interceptors?: readonly GrpcInterceptor[];
  /** The HTTP/2 client: the SDK's own on `net.Socket` (default), or `node:http2`. */
  readonly transport?: GrpcTransportKind;
}

/** Which HTTP/2 client a channel runs on. */
export type GrpcTransportKind = 'socket' | 'node:http2';

function transportOf(kind: GrpcTransportKind): Transport {
  return kind === 'node:http2' ? nodeHttp2Transport() : socketTransport();
}

export interface GrpcCallOptions {
  readonly signal?: AbortSignal;
  /** Deadline of the call in ms from now: sent as `grpc-timeout`, and enforced here (DeadlineExceeded). */
  readonly timeoutMs?: number;
}

/** A method of a protobuf-es service descriptor, reduced to what the transport needs. */
export interface GrpcMethod<I extends DescMessage, O extends DescMessage> {
  readonly name: string;
  readonly parent: { readonly typeName: string };
  readonly input: I;
  readonly output: O;
}

/** `grpc-timeout` value: at most 8 digits, in the finest unit that fits (gRPC over HTTP/2 spec). */
export function encodeGrpcTimeout(ms: number): string {
  const m = Math.max(0, Math.ceil(ms));
  if (m < 1e8) return `${m}m`;
  const s = Math.ceil(m / 1000);
  if (s < 1e8) return `${s}S`;
  return `${Math.min(Math.ceil(s / 3600), 99_999_999)}H`;
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec); a malformed encoding is kept as sent. */
export function decodeGrpcMessage(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The gRPC status for an HTTP status without grpc-status (gRPC's http-grpc-status-mapping.md). */
function statusFromHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return Status.Internal;
    case 401:
      return Status.Unauthenticated;
    case 403:
      return Status.PermissionDenied;
    case 404:
      return Status.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.Unavailable;
    default:
      return Status.Unknown;
  }
}

/** A status carried by response headers or trailers, or undefined when absent. */
function statusOf(h: HeaderMap): GrpcCallError | 'ok' | undefined {
  const s = h['grpc-status'];
  if (s === undefined) return undefined;
  const code = /^\d+$/.test(s) ? Number(s) : Status.Unknown;
  if (code === Status.OK) return 'ok';
  return new GrpcCallError(code, decodeGrpcMessage(h['grpc-message'] ?? ''));
}

/**
 * Splits gRPC length-prefixed messages out of DATA chunks that may cut a frame anywhere.
 * Returns an error instead of a message when a frame is compressed (none was negotiated) or
 * larger than the limit.
 */
const EMPTY = Buffer.alloc(0);
/** The signal interceptors see for a call made without one. */
const NEVER = new AbortController().signal;

class FrameDecoder {
  readonly #max: number;
  #parts: Buffer[] = [];
  #buffered = 0;
  /** Length of the message whose prefix has been read, or -1 while waiting for a prefix. */
  #need = -1;

  constructor(max: number) {
    this.#max = max;
  }

  /** Whether a message has begun and not ended. */
  get midMessage(): boolean {
    return this.#buffered > 0 || this.#need >= 0;
  }

  /** Adds a chunk; calls `onMessage` for each complete message. Returns an error to end the call with, if any. */
  push(chunk: Buffer, onMessage: (msg: Uint8Array) => void): GrpcCallError | undefined {
    this.#parts.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 5) return undefined;
        const head = this.#take(5);
        const flag = head[0] as number;
        const len = head.readUInt32BE(1);
        if (flag !== 0) return new GrpcCallError(Status.Internal, `received a compressed message (flag ${flag}) though no compression was negotiated`);
        if (len > this.#max) return new GrpcCallError(Status.ResourceExhausted, `received message larger than max (${len} vs. ${this.#max})`);
        this.#need = len;
      }
      // Parts are only joined once the whole message is here, so a large message is copied once.
      if (this.#buffered < this.#need) return undefined;
      const msg = this.#take(this.#need);
      this.#need = -1;
      onMessage(msg);
    }
  }

  #take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.#parts[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#parts.shift();
      else this.#parts[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.#parts, this.#buffered);
      out = all.subarray(0, n);
      this.#parts = all.length > n ? [all.subarray(n)] : [];
    }
    this.#buffered -= n;
    return out;
  }
}

function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out[0] = 0;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

/** Callbacks of one call: each decoded message, then the end (undefined = status OK). */
interface CallSink {
  message(msg: Uint8Array): void;
  end(err: GrpcCallError | undefined): void;
}

/** A handle on a started call: cancel it (RST_STREAM CANCEL), pause and resume delivery. */
interface CallHandle {
  /** Ends the call with `err`, or quietly (no error built, no stack captured) when undefined. */
  cancel(err: GrpcCallError | undefined): void;
  pause(): void;
  resume(): void;
}

function abortError(signal: AbortSignal): GrpcCallError {
  const reason: unknown = signal.reason;
  if (reason instanceof GrpcCallError) return reason;
  return new GrpcCallError(Status.Canceled, 'the operation was aborted', reason);
}

/** Wraps a transport failure (dial, lost session, stream error) as Unavailable. */
function unavailable(e: unknown): GrpcCallError {
  if (e instanceof GrpcCallError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new GrpcCallError(Status.Unavailable, `connection error: ${msg}`, e);
}

/** The `:path` and the framed request message of a call. */
function encodeRequest<I extends DescMessage>(method: GrpcMethod<I, DescMessage>, req: MessageInitShape<I>): EncodedRequest {
  return { path: `/${method.parent.typeName}/${method.name}`, body: frame(toBinary(method.input, create(method.input, req))) };
}

interface EncodedRequest {
  readonly path: string;
  /** Length-prefixed; shared between calls, so never written to. */
  readonly body: Buffer;
}

/**
 * The key of a request in the encoded-request cache: its method and fields, when every field is
 * a string or a list of strings (every Workload API request: empty, or audiences and a SPIFFE ID);
 * undefined for any other request, which is encoded each time.
 */
function requestKey(path: string, req: object): string | undefined {
  for (const v of Object.values(req)) {
    if (typeof v === 'string') continue;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) continue;
    return undefined;
  }
  return `${path}\n${JSON.stringify(req)}`;
}

/** A response message, or Internal naming why it does not decode. */
export function decodeResponse<O extends DescMessage>(method: GrpcMethod<DescMessage, O>, msg: Uint8Array): MessageShape<O> {
  try {
    return fromBinary(method.output, msg);
  } catch (e) {
    throw new GrpcCallError(Status.Internal, `cannot decode the response: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

/** One HTTP/2 session shared by the calls of a client; a new one is dialled after it is lost. */
export class GrpcChannel {
  readonly #opts: GrpcChannelOptions;
  readonly #max: number;
  readonly #transport: Transport;
  /** The channel's own headers after content-type and te, in order: the fixed part of every request. */
  readonly #fields: readonly (readonly [string, string])[];
  #session: TransportSession | undefined;
  #closed = false;
  /** Framed requests by method and content (requestKey), the last 32: a workload sends the same few again and again. */
  readonly #encoded = new BoundedCache<string, EncodedRequest>(32);

  constructor(opts: GrpcChannelOptions) {
    this.#opts = opts;
    this.#max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#transport = transportOf(opts.transport ?? 'socket');
    this.#fields = Object.entries({ 'content-type': 'application/grpc', te: 'trailers', ...opts.headers }).map(([k, v]) => [k.toLowerCase(), v] as const);
  }

  /** The framed request, from the cache when the same one was sent before (protobuf-es's create + toBinary cost more than the framing). */
  #encode<I extends DescMessage>(method: GrpcMethod<I, DescMessage>, req: MessageInitShape<I>): EncodedRequest {
    const key = requestKey(`/${method.parent.typeName}/${method.name}`, req);
    if (key === undefined) return encodeRequest(method, req);
    const hit = this.#encoded.get(key);
    if (hit !== undefined) return hit;
    const enc = encodeRequest(method, req);
    this.#encoded.set(key, enc);
    return enc;
  }

  /** Closes the session; running calls fail with Canceled, later calls too. */
  close(): void {
    this.#closed = true;
    const s = this.#session;
    this.#session = undefined;
    s?.destroy();
  }

  #getSession(): TransportSession {
    const cur = this.#session;
    if (cur?.usable === true) return cur;
    const session = this.#transport.connect(this.#opts.connect, this.#opts.authority);
    this.#session = session;
    return session;
  }

  /** Starts a call; the sink sees each message and then exactly one end. */
  #start(path: string, body: Buffer, opts: GrpcCallOptions, sink: CallSink): CallHandle {
    let ended = false;
    let stream: TransportStream | undefined;
    let timer: NodeJS.Timeout | undefined;
    const signal = opts.signal;
    const onAbort = (): void => handle.cancel(abortError(signal as AbortSignal));
    const finish = (err: GrpcCallError | undefined): void => {
      if (ended) return;
      ended = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sink.end(err);
    };
    const handle: CallHandle = {
      cancel: (err) => {
        if (ended) return;
        stream?.cancel();
        finish(err);
      },
      pause: () => stream?.pause(),
      resume: () => stream?.resume(),
    };
    if (this.#closed) {
      finish(new GrpcCallError(Status.Canceled, 'client is closed'));
      return handle;
    }
    if (signal?.aborted === true) {
      finish(abortError(signal));
      return handle;
    }
    let retried = false;
    const send = (fields: readonly (readonly [string, string])[], reqPath: string, fixed: boolean): Promise<void> => {
      if (ended) return Promise.resolve();
      // gRPC's transparent retry: once per call, and only for a stream the server never processed.
      const again = (): boolean => {
        if (retried || this.#closed) return false;
        retried = true;
        queueMicrotask(() => void send(fields, reqPath, fixed));
        return true;
      };
      try {
        stream = this.#getSession().request(
          { path: reqPath, fields, fixed },
          body,
          this.#receive(sink, finish, () => ended, handle, again),
        );
      } catch (e) {
        finish(unavailable(e));
      }
      return Promise.resolve();
    };
    if (signal !== undefined) signal.addEventListener('abort', onAbort, { once: true });
    // Timers fire at once beyond 2^31-1 ms; a deadline that far away is only sent, not enforced here.
    if (opts.timeoutMs !== undefined && opts.timeoutMs <= 0x7fffffff) {
      timer = setTimeout(() => handle.cancel(new GrpcCallError(Status.DeadlineExceeded, 'context deadline exceeded')), Math.max(0, opts.timeoutMs));
    }
    const fields = opts.timeoutMs === undefined ? this.#fields : [...this.#fields, ['grpc-timeout', encodeGrpcTimeout(opts.timeoutMs)] as const];
    const interceptors = this.#opts.interceptors ?? [];
    if (interceptors.length === 0) {
      void send(fields, path, opts.timeoutMs === undefined);
    } else {
      // A fetch `Headers` is only built for interceptors (it costs more than the call's framing).
      const header = new Headers(fields as [string, string][]);
      let next = (req: GrpcRequest): Promise<void> => {
        const out: [string, string][] = [];
        req.header.forEach((v, k) => {
          out.push([k, v]);
        });
        return send(out, req.path, false);
      };
      for (let i = interceptors.length - 1; i >= 0; i--) next = (interceptors[i] as GrpcInterceptor)(next);
      next({ path, header, signal: signal ?? NEVER }).catch((e: unknown) => finish(e instanceof GrpcCallError ? e : unavailable(e)));
    }
    return handle;
  }

  /** The stream callbacks of a call: gRPC framing, status from headers or trailers, failures mapped to gRPC codes. */
  #receive(sink: CallSink, finish: (err: GrpcCallError | undefined) => void, ended: () => boolean, handle: CallHandle, retry: () => boolean): StreamEvents {
    const decoder = new FrameDecoder(this.#max);
    let responded = false;
    let status: GrpcCallError | 'ok' | undefined;
    let failure: GrpcCallError | undefined;
    const fail = (err: GrpcCallError): void => {
      if (failure !== undefined) return;
      failure = err;
      handle.cancel(err);
    };
    return {
      response: (h) => {
        responded = true;
        status = statusOf(h);
        if (status !== undefined) return; // trailers-only
        const httpStatus = Number(h[':status']);
        if (httpStatus !== 200) {
          fail(new GrpcCallError(statusFromHttp(httpStatus), `unexpected HTTP status code received from server: ${httpStatus}`));
          return;
        }
        const ct = h['content-type'] ?? '';
        if (!ct.startsWith('application/grpc')) fail(new GrpcCallError(Status.Unknown, `unexpected content-type "${ct}"`));
      },
      data: (chunk) => {
        if (failure !== undefined) return;
        const err = decoder.push(chunk, (m) => {
          if (failure === undefined) sink.message(m);
        });
        if (err !== undefined) fail(err);
      },
      trailers: (h) => {
        status = statusOf(h) ?? new GrpcCallError(Status.Internal, 'server closed the stream without grpc-status in its trailers');
      },
      close: (end) => {
        // A call ended already (cancelled after its first message, failed) needs no status: no error object, no stack captured.
        if (failure !== undefined || ended()) return;
        if (end.error !== undefined) {
          finish(unavailable(end.error));
        } else if (status === 'ok') {
          finish(!decoder.midMessage ? undefined : new GrpcCallError(Status.Internal, 'stream ended in the middle of a message'));
        } else if (status !== undefined) {
          finish(status);
        } else if (end.rstCode === H2Code.REFUSED_STREAM && !responded && retry()) {
          // Refused, or above the last stream id of a GOAWAY: the server never processed the call,
          // so it is sent again (on a new connection after a GOAWAY, which makes the old one unusable).
        } else if (end.lost || end.rstCode === H2Code.REFUSED_STREAM || end.rstCode === H2Code.CANCEL) {
          // The connection went away (its streams end as lost or with CANCEL) or the server
          // refused the stream: retryable, as grpc-go reports a lost transport.
          finish(new GrpcCallError(Status.Unavailable, `stream closed before a status was received (HTTP/2 code ${end.rstCode})`));
        } else {
          finish(new GrpcCallError(Status.Internal, `server closed the stream without sending trailers (HTTP/2 code ${end.rstCode})`));
        }
      },
    };
  }

  /** A unary call: exactly one response message and status OK. */
  unary<I extends DescMessage, O extends DescMessage>(
    method: GrpcMethod<I, O>,
    req: MessageInitShape<I>,
    opts: GrpcCallOptions = {},
  ): Promise<MessageShape<O>> {
    const { path, body } = this.#encode(method, req);
    return new Promise((resolve, reject) => {
      let msg: Uint8Array | undefined;
      let count = 0;
      this.#start(path, body, opts, {
        message: (m) => {
          count++;
          msg = m;
        },
        end: (err) => {
          if (err !== undefined) return reject(err);
          if (count !== 1 || msg === undefined) return reject(new GrpcCallError(Status.Unimplemented, `unary call got ${count} response messages`));
          try {
            resolve(decodeResponse(method, msg));
          } catch (e) {
            reject(e);
          }
        },
      });
    });
  }

  /**
   * The first response message of a server-streaming call, after which the call is cancelled
   * (RST_STREAM CANCEL); undefined when the server ends the stream (status OK) before sending one.
   * One promise per call, without an async iterator's queue and promises per message.
   */
  first<I extends DescMessage, O extends DescMessage>(
    method: GrpcMethod<I, O>,
    req: MessageInitShape<I>,
    opts: GrpcCallOptions = {},
  ): Promise<MessageShape<O> | undefined> {
    return this.#first(method, req, opts, (m) => decodeResponse(method, m));
  }

  /**
   * As `first`, but the message undecoded: its bytes as received (in no buffer the transport
   * reuses), for a caller that keeps what it made of the same bytes before.
   */
  firstRaw<I extends DescMessage>(method: GrpcMethod<I, DescMessage>, req: MessageInitShape<I>, opts: GrpcCallOptions = {}): Promise<Uint8Array | undefined> {
    return this.#first(method, req, opts, (m) => m);
  }

  #first<I extends DescMessage, T>(
    method: GrpcMethod<I, DescMessage>,
    req: MessageInitShape<I>,
    opts: GrpcCallOptions,
    decode: (msg: Uint8Array) => T,
  ): Promise<T | undefined> {
    const { path, body } = this.#encode(method, req);
    return new Promise((resolve, reject) => {
      let got = false;
      const handle = this.#start(path, body, opts, {
        message: (m) => {
          if (got) return;
          got = true;
          // Nobody reads this call's end any more: no error object for it.
          handle.cancel(undefined);
          try {
            resolve(decode(m));
          } catch (e) {
            reject(e);
          }
        },
        end: (err) => {
          if (got) return;
          if (err !== undefined) reject(err);
          else resolve(undefined);
        },
      });
    });
  }

  /**
   * A server-streaming call as an async iterable: each response message, until the server ends the
   * stream (status OK) or fails it (a GrpcCallError). Leaving the loop early cancels the stream.
   */
  serverStream<I extends DescMessage, O extends DescMessage>(
    method: GrpcMethod<I, O>,
    req: MessageInitShape<I>,
    opts: GrpcCallOptions = {},
  ): AsyncIterable<MessageShape<O>> {
    const { path, body } = this.#encode(method, req);
    return {
      [Symbol.asyncIterator]: () => {
        // Decoded lazily as the caller pulls, so a slow consumer pauses the stream (HTTP/2 flow control).
        const queue: Uint8Array[] = [];
        let done = false;
        let error: GrpcCallError | undefined;
        let waiter: (() => void) | undefined;
        const wake = (): void => {
          const w = waiter;
          waiter = undefined;
          w?.();
        };
        const handle = this.#start(path, body, opts, {
          message: (m) => {
            queue.push(m);
            if (queue.length >= 16) handle.pause();
            wake();
          },
          end: (err) => {
            done = true;
            error = err;
            wake();
          },
        });
        const iter: AsyncIterator<MessageShape<O>> = {
          next: async () => {
            for (;;) {
              const m = queue.shift();
              if (m !== undefined) {
                if (queue.length < 4) handle.resume();
                try {
                  return { done: false, value: decodeResponse(method, m) };
                } catch (e) {
                  handle.cancel(e as GrpcCallError);
                  throw e;
                }
              }
              if (done) {
                if (error !== undefined) throw error;
                return { done: true, value: undefined };
              }
              await new Promise<void>((r) => {
                waiter = r;
              });
            }
          },
          return: async () => {
            // Nobody reads this call's end any more: no error object for it.
            handle.cancel(undefined);
            queue.length = 0;
            return { done: true, value: undefined };
          },
        };
        return iter;
      },
    };
  }
}

/** A Unix socket dialer for GrpcChannel. */
export function unixConnector(path: string): Dialer {
  return (onread) => net.connect(onread === undefined ? { path } : { path, onread });
}

/** A TCP dialer for GrpcChannel (`host:port`, IPv6 in brackets). */
export function tcpConnector(target: string): Dialer {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(target.slice(i + 1));
  return (onread) => net.connect(onread === undefined ? { host, port } : { host, port, onread });
}
