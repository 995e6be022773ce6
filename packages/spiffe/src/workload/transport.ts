/**
 * What GrpcChannel needs of an HTTP/2 client: sessions that open request streams and report
 * each stream's response headers, DATA, trailers and end. Two implementations: the SDK's own
 * client on `net.Socket` (h2-connection.ts, the default) and `node:http2` (node-h2-transport.ts).
 */
import type * as net from 'node:net';

/** Response header fields: the first value of each name. */
export type HeaderMap = Readonly<Record<string, string | undefined>>;

/** How a stream ended. */
export interface StreamEnd {
  /** The RST_STREAM code the stream was reset with (0 when it ended with END_STREAM). */
  readonly rstCode: number;
  /** The connection was lost, closed or refused the stream before it ended: a retryable failure. */
  readonly lost: boolean;
  /** The failure that ended it (connection or protocol error), if any. */
  readonly error?: unknown;
}

/** Callbacks of one stream: `response` once, then DATA chunks, `trailers` at most once, and `close` exactly once, last. */
export interface StreamEvents {
  /** The first HEADERS: response headers, or a trailers-only response. */
  response(h: HeaderMap): void;
  data(chunk: Buffer): void;
  trailers(h: HeaderMap): void;
  close(end: StreamEnd): void;
}

/** A started request stream. */
export interface TransportStream {
  /** Resets the stream (RST_STREAM CANCEL) when still open; no event follows. */
  cancel(): void;
  /** Stops granting the server flow-control window for this stream (a slow consumer). */
  pause(): void;
  resume(): void;
}

/** One request's headers: the `:path`, then regular fields (lowercase names). */
export interface RequestHead {
  readonly path: string;
  readonly fields: readonly (readonly [string, string])[];
  /** The fields are the channel's fixed set for this path: the encoded block may be reused. */
  readonly fixed: boolean;
}

/** One connection: streams are multiplexed on it until it is lost or the server sends GOAWAY. */
export interface TransportSession {
  /** Whether new streams may be opened on it. */
  readonly usable: boolean;
  /** Opens a stream and sends the request (HEADERS and the whole body, END_STREAM). */
  request(head: RequestHead, body: Buffer, events: StreamEvents): TransportStream;
  /** Closes the connection at once; open streams end as lost. */
  destroy(): void;
}

/** Opens a connection's socket; `onread` as net.connect's option, when given. */
export type Dialer = (onread?: net.OnReadOpts) => net.Socket;

/** Dials sessions for a channel. */
export interface Transport {
  connect(dial: Dialer, authority: string): TransportSession;
}
