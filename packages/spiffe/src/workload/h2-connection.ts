/**
 * A small HTTP/2 client (RFC 9113) on a `net.Socket`, for the Workload API's gRPC calls: the
 * client preface and SETTINGS, request streams sent as HEADERS (+ CONTINUATION) and DATA with
 * END_STREAM, response HEADERS/DATA/trailers, flow control both ways (WINDOW_UPDATE), SETTINGS
 * and PING acknowledgements, GOAWAY (no new streams; streams above its last id end as refused,
 * so the channel dials a new connection), RST_STREAM both ways, padding, and HPACK with the
 * server's dynamic table. No server push (disabled in our SETTINGS), no priorities, no TLS.
 *
 * Written here rather than using `node:http2` because `node:http2` is what made the SDK's Workload
 * API calls slower than go-spiffe's: profiles of `bench/sdk.ts` put most of a cached call's client
 * CPU in its session/stream machinery (JS streams, nghttp2 callbacks, header objects), not in gRPC
 * or protobuf. The SDK keeps `node:http2` as an option (`transport: 'node:http2'`).
 *
 * Malformed server input is a connection error: GOAWAY with the RFC's code, the socket closed, and
 * every open stream ended with an H2ProtocolError naming the cause; never a throw out of a socket
 * callback, never a stream left waiting.
 */
import type * as net from 'node:net';
import { setImmediate } from 'node:timers';
import { SpiffeError } from '../errors.ts';
import { BoundedCache } from '../internal/bounded-cache.ts';
import { encodeHeaderBlock, HpackDecoder, HpackError } from './hpack.ts';
import type { Dialer, RequestHead, StreamEvents, Transport, TransportSession, TransportStream } from './transport.ts';

/** HTTP/2 frame types (RFC 9113 6). */
const FrameType = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/** HTTP/2 error codes (RFC 9113 7). */
export const H2Code = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
} as const;

const ERROR_KIND: Readonly<Record<number, string>> = {
  [H2Code.COMPRESSION_ERROR]: 'compression',
  [H2Code.FRAME_SIZE_ERROR]: 'frame size',
  [H2Code.FLOW_CONTROL_ERROR]: 'flow control',
};

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** The default SETTINGS_MAX_FRAME_SIZE; we do not raise ours, so no frame of the server may exceed it. */
const MAX_FRAME = 16_384;
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 0x7fffffff;
/** Our SETTINGS_INITIAL_WINDOW_SIZE: a stream may have this much unacknowledged DATA in flight. */
export const STREAM_WINDOW = 1 << 20;
/** The connection's receive window (raised from 65,535 by a WINDOW_UPDATE right after the preface). */
export const CONNECTION_WINDOW = 1 << 24;
/** The largest header block (HEADERS and CONTINUATIONs) accepted: SETTINGS_MAX_HEADER_LIST_SIZE in spirit. */
export const MAX_HEADER_BLOCK = 1 << 20;
const MAX_STREAM_ID = 0x7fffffff;
/** The socket reads into one buffer of this size per connection (net.connect's `onread`). */
const READ_BUFFER = 64 * 1024;

/** A protocol violation of the server, or the connection's failure, as seen by the streams it ends. */
export class H2ProtocolError extends SpiffeError {
  /** The HTTP/2 error code (sent in our GOAWAY, or received in the server's). */
  readonly h2Code: number;

  constructor(h2Code: number, message: string, cause?: unknown) {
    super('ERR_WORKLOAD_API', message, { cause });
    this.h2Code = h2Code;
  }
}

function frameHeader(out: Buffer, at: number, length: number, type: number, flags: number, id: number): void {
  out.writeUIntBE(length, at, 3);
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(id, at + 5);
}

function frameOf(type: number, flags: number, id: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  frameHeader(out, 0, payload.length, type, flags, id);
  out.set(payload, 9);
  return out;
}

function u32Frame(type: number, id: number, value: number): Buffer {
  const out = Buffer.allocUnsafe(13);
  frameHeader(out, 0, 4, type, 0, id);
  out.writeUInt32BE(value, 9);
  return out;
}

/** The HEADERS frame, then CONTINUATIONs when the block exceeds the server's frame size. */
function headerFrames(id: number, block: Buffer, maxFrame: number): Buffer[] {
  if (block.length <= maxFrame) return [frameOf(FrameType.HEADERS, END_HEADERS, id, block)];
  const out: Buffer[] = [];
  for (let at = 0; at < block.length; at += maxFrame) {
    const part = block.subarray(at, at + maxFrame);
    const last = at + maxFrame >= block.length;
    out.push(frameOf(at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, last ? END_HEADERS : 0, id, part));
  }
  return out;
}

class H2Stream implements TransportStream {
  readonly id: number;
  readonly events: StreamEvents;
  readonly #conn: H2Connection;
  /** The server's window for our DATA on this stream. */
  sendWindow: number;
  /** Request body not sent yet (flow control); sent with END_STREAM when it runs out. */
  pending: Buffer | undefined;
  /** Our window for the server's DATA: what it may still send before we acknowledge. */
  recvWindow = STREAM_WINDOW;
  /** DATA received and not acknowledged yet. */
  recvUnacked = 0;
  paused = false;
  headersSeen = 0;
  closed = false;

  constructor(conn: H2Connection, id: number, events: StreamEvents, sendWindow: number, body: Buffer) {
    this.#conn = conn;
    this.id = id;
    this.events = events;
    this.sendWindow = sendWindow;
    this.pending = body;
  }

  cancel(): void {
    this.#conn.reset(this, H2Code.CANCEL);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.#conn.ackStream(this);
  }
}

/** A header block being collected from HEADERS and its CONTINUATIONs. */
interface PendingBlock {
  readonly id: number;
  readonly endStream: boolean;
  readonly parts: Buffer[];
  size: number;
}

/** One HTTP/2 connection to a Workload API server. */
export class H2Connection implements TransportSession {
  readonly #socket: net.Socket;
  readonly #authority: string;
  readonly #blocks: BoundedCache<string, Buffer>;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, H2Stream>();
  #nextId = 1;
  /** Bytes of a frame cut by the end of a read, waiting for the rest. */
  #partial: Buffer | undefined;
  #continuation: PendingBlock | undefined;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = MAX_FRAME;
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow = CONNECTION_WINDOW;
  #recvUnacked = 0;
  #goaway = false;
  #dead = false;
  /** Streams waiting for send window (request bodies larger than the server's window). */
  readonly #blocked = new Set<H2Stream>();
  /**
   * Control frames (RST_STREAM, WINDOW_UPDATE, SETTINGS and PING acks) not written yet: they go
   * out with the next request or at the next turn of the event loop, so a call that ends with a
   * cancel (`first()`) costs one write, not two (each write to the agent's socket wakes it).
   */
  #out: Buffer[] = [];
  #flushScheduled = false;

  constructor(dial: Dialer, authority: string, blocks: BoundedCache<string, Buffer>, firstStreamId = 1) {
    this.#nextId = firstStreamId;
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER);
    // Reads land in readBuffer, reused for the next read: what outlives a read is copied (#onData).
    const socket = dial({
      buffer: readBuffer,
      callback: (n) => {
        this.#onData(readBuffer.subarray(0, n), true);
        return true;
      },
    });
    this.#socket = socket;
    this.#authority = authority;
    this.#blocks = blocks;
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(0x2, 0); // SETTINGS_ENABLE_PUSH
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(0x4, 6); // SETTINGS_INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(STREAM_WINDOW, 8);
    socket.setNoDelay?.(true);
    socket.write(
      Buffer.concat([PREFACE, frameOf(FrameType.SETTINGS, 0, 0, settings), u32Frame(FrameType.WINDOW_UPDATE, 0, CONNECTION_WINDOW - DEFAULT_WINDOW)]),
    );
    // A dialer that ignored `onread`: the socket's own chunks, kept as they are.
    socket.on('data', (chunk: Buffer) => this.#onData(chunk, false));
    socket.on('error', (e) => this.#fail(new H2ProtocolError(H2Code.INTERNAL_ERROR, e.message, e), false));
    socket.on('close', () => this.#fail(new H2ProtocolError(H2Code.NO_ERROR, 'the connection was closed'), false));
    // An idle connection does not keep the process alive; a running call does (ref'd while streams are open).
    socket.unref();
  }

  get usable(): boolean {
    return !this.#dead && !this.#goaway && this.#nextId <= MAX_STREAM_ID;
  }

  request(head: RequestHead, body: Buffer, events: StreamEvents): TransportStream {
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new H2Stream(this, id, events, this.#peerInitialWindow, body);
    if (this.#dead) {
      stream.closed = true;
      queueMicrotask(() => events.close({ rstCode: H2Code.REFUSED_STREAM, lost: true }));
      return stream;
    }
    if (this.#streams.size === 0) this.#socket.ref();
    this.#streams.set(id, stream);
    const frames = headerFrames(id, this.#block(head), this.#peerMaxFrame);
    this.#sendBody(stream, frames);
    return stream;
  }

  destroy(): void {
    this.#fail(new H2ProtocolError(H2Code.CANCEL, 'the client closed the connection'), false);
  }

  /** The request's header block: from the cache when its fields are the channel's fixed set. */
  #block(head: RequestHead): Buffer {
    const key = head.fixed ? head.path : undefined;
    const hit = key === undefined ? undefined : this.#blocks.get(key);
    if (hit !== undefined) return hit;
    const block = encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', head.path], [':authority', this.#authority], ...head.fields]);
    if (key !== undefined) this.#blocks.set(key, block);
    return block;
  }

  /** Sends as much of the stream's body as the windows allow (END_STREAM with its last byte), after `frames`, in one write. */
  #sendBody(stream: H2Stream, frames: Buffer[]): void {
    const body = stream.pending;
    if (body !== undefined) {
      let at = 0;
      while (at < body.length || body.length === 0) {
        const n = Math.min(body.length - at, stream.sendWindow, this.#sendWindow, this.#peerMaxFrame);
        if (n <= 0 && body.length > 0) break;
        const last = at + n === body.length;
        frames.push(frameOf(FrameType.DATA, last ? END_STREAM : 0, stream.id, body.subarray(at, at + n)));
        at += n;
        stream.sendWindow -= n;
        this.#sendWindow -= n;
        if (last) break;
      }
      if (at >= body.length) {
        stream.pending = undefined;
        this.#blocked.delete(stream);
      } else {
        stream.pending = body.subarray(at);
        this.#blocked.add(stream);
      }
    }
    if (this.#out.length > 0) {
      frames.unshift(...this.#out);
      this.#out = [];
    }
    if (frames.length === 1) this.#socket.write(frames[0] as Buffer);
    else if (frames.length > 1) this.#socket.write(Buffer.concat(frames));
  }

  /** Queues a control frame (see #out). */
  #queue(frame: Buffer): void {
    this.#out.push(frame);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      if (this.#dead || this.#out.length === 0) return;
      const out = this.#out;
      this.#out = [];
      this.#socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    });
  }

  /** Resets a stream of ours (cancel) and forgets it. */
  reset(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    this.#forget(stream);
    if (!this.#dead) this.#queue(u32Frame(FrameType.RST_STREAM, stream.id, code));
  }

  /** Acknowledges the DATA a resumed (or running) stream has received, granting the server window again. */
  ackStream(stream: H2Stream): void {
    if (stream.closed || stream.paused || stream.recvUnacked === 0 || this.#dead) return;
    this.#queue(u32Frame(FrameType.WINDOW_UPDATE, stream.id, stream.recvUnacked));
    stream.recvWindow += stream.recvUnacked;
    stream.recvUnacked = 0;
  }

  #forget(stream: H2Stream): void {
    stream.closed = true;
    this.#blocked.delete(stream);
    this.#streams.delete(stream.id);
    if (this.#streams.size === 0) {
      this.#socket.unref();
      if (this.#goaway && !this.#dead) this.#fail(new H2ProtocolError(H2Code.NO_ERROR, 'the server sent GOAWAY'), false);
      // No stream id left (not usable any more) and the last stream ended: nothing can use the
      // connection again, so it is closed (with a GOAWAY, as a client going away says).
      else if (this.#nextId > MAX_STREAM_ID && !this.#dead) this.#fail(new H2ProtocolError(H2Code.NO_ERROR, 'stream ids exhausted'), true);
    }
  }

  /** Ends a stream and tells its owner. */
  #end(stream: H2Stream, rstCode: number, lost: boolean, error?: unknown): void {
    if (stream.closed) return;
    this.#forget(stream);
    stream.events.close(error === undefined ? { rstCode, lost } : { rstCode, lost, error });
  }

  /** Closes the connection (after a GOAWAY with `code` when it is our protocol error) and ends every open stream. */
  #fail(err: H2ProtocolError, sendGoaway: boolean): void {
    if (this.#dead) return;
    this.#dead = true;
    if (sendGoaway) {
      const payload = Buffer.alloc(8);
      payload.writeUInt32BE(err.h2Code, 4);
      const goaway = frameOf(FrameType.GOAWAY, 0, 0, Buffer.concat([payload, Buffer.from(err.message, 'utf8')]));
      this.#socket.end(Buffer.concat([...this.#out, goaway]), () => this.#socket.destroy());
    } else {
      this.#socket.destroy();
    }
    const open = [...this.#streams.values()];
    const failed = err.h2Code !== H2Code.NO_ERROR && err.h2Code !== H2Code.CANCEL;
    for (const s of open) this.#end(s, err.h2Code === H2Code.NO_ERROR ? H2Code.CANCEL : err.h2Code, true, failed ? err : undefined);
    this.#partial = undefined;
    this.#out = [];
  }

  /** A connection error caused by the server: GOAWAY with `code`, then every stream fails naming the cause. */
  #protocolError(code: number, message: string): void {
    this.#fail(new H2ProtocolError(code, `HTTP/2 ${ERROR_KIND[code] ?? 'protocol'} error from the server: ${message}`), true);
  }

  /** Parses the frames of a read; `shared`: `chunk` is the reused read buffer, so what is kept is copied. */
  #onData(chunk: Buffer, shared: boolean): void {
    if (this.#dead) return;
    this.#shared = shared && this.#partial === undefined;
    const buf = this.#partial === undefined ? chunk : Buffer.concat([this.#partial, chunk]);
    this.#partial = undefined;
    let pos = 0;
    while (buf.length - pos >= 9) {
      const length = buf.readUIntBE(pos, 3);
      if (length > MAX_FRAME) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, `a frame of ${length} bytes, above the ${MAX_FRAME} allowed`);
      if (buf.length - pos - 9 < length) break;
      const type = buf[pos + 3] as number;
      const flags = buf[pos + 4] as number;
      const id = buf.readUInt32BE(pos + 5) & 0x7fffffff;
      const payload = buf.subarray(pos + 9, pos + 9 + length);
      pos += 9 + length;
      try {
        this.#frame(type, flags, id, payload);
      } catch (e) {
        // Nothing thrown while handling a frame may escape a socket callback (it would end the process).
        const msg = e instanceof Error ? e.message : String(e);
        this.#fail(new H2ProtocolError(H2Code.INTERNAL_ERROR, `HTTP/2 client failed on a frame of type ${type}: ${msg}`, e), true);
      }
      if (this.#dead) return;
    }
    if (pos < buf.length) this.#partial = this.#shared ? Buffer.from(buf.subarray(pos)) : buf.subarray(pos);
  }

  /** Whether the frames being parsed lie in the reused read buffer. */
  #shared = false;

  /** `b` itself, or a copy when it lies in the reused read buffer. */
  #keep(b: Buffer): Buffer {
    return this.#shared ? Buffer.from(b) : b;
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.#continuation !== undefined && (type !== FrameType.CONTINUATION || id !== this.#continuation.id)) {
      return this.#protocolError(
        H2Code.PROTOCOL_ERROR,
        `frame type ${type} on stream ${id} in the middle of a header block of stream ${this.#continuation.id}`,
      );
    }
    switch (type) {
      case FrameType.DATA:
        return this.#data(flags, id, payload);
      case FrameType.HEADERS:
        return this.#headers(flags, id, payload);
      case FrameType.CONTINUATION:
        return this.#continuationFrame(flags, id, payload);
      case FrameType.PRIORITY:
        if (id === 0) return this.#protocolError(H2Code.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, `PRIORITY of ${payload.length} bytes`);
        return;
      case FrameType.RST_STREAM:
        return this.#rstStream(id, payload);
      case FrameType.SETTINGS:
        return this.#settings(flags, id, payload);
      case FrameType.PUSH_PROMISE:
        return this.#protocolError(H2Code.PROTOCOL_ERROR, 'PUSH_PROMISE though push is disabled');
      case FrameType.PING:
        if (id !== 0) return this.#protocolError(H2Code.PROTOCOL_ERROR, `PING on stream ${id}`);
        if (payload.length !== 8) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, `PING of ${payload.length} bytes`);
        if ((flags & ACK) === 0) this.#queue(frameOf(FrameType.PING, ACK, 0, payload));
        return;
      case FrameType.GOAWAY:
        return this.#goawayFrame(id, payload);
      case FrameType.WINDOW_UPDATE:
        return this.#windowUpdate(id, payload);
      default:
        // Unknown frame types are ignored (RFC 9113 4.1).
        return;
    }
  }

  /** Strips padding (RFC 9113 6.1); undefined after a protocol error. */
  #unpad(flags: number, payload: Buffer, what: string): Buffer | undefined {
    if ((flags & PADDED) === 0) return payload;
    const pad = payload.length === 0 ? 0 : (payload[0] as number);
    if (payload.length === 0 || pad >= payload.length) {
      this.#protocolError(H2Code.PROTOCOL_ERROR, `${what} padding of ${pad} bytes in a ${payload.length}-byte frame`);
      return undefined;
    }
    return payload.subarray(1, payload.length - pad);
  }

  /** Whether `id` names a stream the server may not speak of: one we never opened. */
  #idle(id: number): boolean {
    return id % 2 === 0 || id >= this.#nextId;
  }

  #data(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#protocolError(H2Code.PROTOCOL_ERROR, 'DATA on stream 0');
    if (this.#idle(id)) return this.#protocolError(H2Code.PROTOCOL_ERROR, `DATA on stream ${id}, which was never opened`);
    // The whole frame, padding included, counts against the windows (RFC 9113 6.9.1).
    this.#recvWindow -= payload.length;
    if (this.#recvWindow < 0) return this.#protocolError(H2Code.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.#recvUnacked += payload.length;
    if (this.#recvUnacked >= CONNECTION_WINDOW / 2) {
      this.#queue(u32Frame(FrameType.WINDOW_UPDATE, 0, this.#recvUnacked));
      this.#recvWindow += this.#recvUnacked;
      this.#recvUnacked = 0;
    }
    const data = this.#unpad(flags, payload, 'DATA');
    if (data === undefined) return;
    const stream = this.#streams.get(id);
    // A stream we reset or that ended: its late frames are dropped.
    if (stream === undefined) return;
    if (stream.headersSeen === 0) return this.#streamError(stream, 'DATA before the response headers');
    if (stream.headersSeen > 1) return this.#streamError(stream, 'DATA after the trailers');
    stream.recvWindow -= payload.length;
    if (stream.recvWindow < 0) return this.#streamError(stream, 'DATA beyond the stream window', H2Code.FLOW_CONTROL_ERROR);
    stream.recvUnacked += payload.length;
    if (data.length > 0) stream.events.data(this.#keep(data));
    if (stream.closed) return;
    if ((flags & END_STREAM) !== 0) return this.#end(stream, 0, false);
    if (stream.recvUnacked >= STREAM_WINDOW / 2) this.ackStream(stream);
  }

  /** A stream-level protocol error: RST_STREAM to the server, the stream ended with the cause. */
  #streamError(stream: H2Stream, message: string, code: number = H2Code.PROTOCOL_ERROR): void {
    this.reset(stream, code);
    stream.events.close({ rstCode: code, lost: false, error: new H2ProtocolError(code, `HTTP/2 stream error from the server: ${message}`) });
  }

  #headers(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#protocolError(H2Code.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let fragment = this.#unpad(flags, payload, 'HEADERS');
    if (fragment === undefined) return;
    if ((flags & PRIORITY) !== 0) {
      if (fragment.length < 5) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, 'HEADERS too short for its priority fields');
      fragment = fragment.subarray(5);
    }
    const endStream = (flags & END_STREAM) !== 0;
    if ((flags & END_HEADERS) !== 0) return this.#headerBlock(id, endStream, fragment);
    this.#continuation = { id, endStream, parts: [this.#keep(fragment)], size: fragment.length };
  }

  #continuationFrame(flags: number, id: number, payload: Buffer): void {
    const block = this.#continuation;
    if (block === undefined) return this.#protocolError(H2Code.PROTOCOL_ERROR, `CONTINUATION on stream ${id} without a header block to continue`);
    block.parts.push(this.#keep(payload));
    block.size += payload.length;
    if (block.size > MAX_HEADER_BLOCK) return this.#protocolError(H2Code.PROTOCOL_ERROR, `a header block larger than ${MAX_HEADER_BLOCK} bytes`);
    if ((flags & END_HEADERS) === 0) return;
    this.#continuation = undefined;
    this.#headerBlock(id, block.endStream, Buffer.concat(block.parts, block.size));
  }

  #headerBlock(id: number, endStream: boolean, block: Buffer): void {
    if (this.#idle(id)) return this.#protocolError(H2Code.PROTOCOL_ERROR, `HEADERS on stream ${id}, which was never opened`);
    let fields;
    try {
      // Decoded even for a stream we reset: the dynamic table must follow every block.
      fields = this.#decoder.decode(block);
    } catch (e) {
      if (e instanceof HpackError) return this.#protocolError(H2Code.COMPRESSION_ERROR, e.message);
      throw e;
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    stream.headersSeen++;
    if (stream.headersSeen === 1) {
      stream.events.response(fields);
    } else {
      if (!endStream) return this.#streamError(stream, 'a second header block without END_STREAM');
      stream.events.trailers(fields);
    }
    if (endStream) this.#end(stream, 0, false);
  }

  #rstStream(id: number, payload: Buffer): void {
    if (id === 0) return this.#protocolError(H2Code.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, `RST_STREAM of ${payload.length} bytes`);
    if (this.#idle(id)) return this.#protocolError(H2Code.PROTOCOL_ERROR, `RST_STREAM on stream ${id}, which was never opened`);
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    const code = payload.readUInt32BE(0);
    this.#end(stream, code, code === H2Code.REFUSED_STREAM);
  }

  #settings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) return this.#protocolError(H2Code.PROTOCOL_ERROR, `SETTINGS on stream ${id}`);
    if ((flags & ACK) !== 0) {
      if (payload.length !== 0) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, 'SETTINGS acknowledgement with a payload');
      return;
    }
    if (payload.length % 6 !== 0) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, `SETTINGS of ${payload.length} bytes`);
    for (let at = 0; at < payload.length; at += 6) {
      const key = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (key === 0x4) {
        if (value > MAX_WINDOW) return this.#protocolError(H2Code.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
        // A new initial window moves every open stream's window by the difference (RFC 9113 6.9.2).
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.#streams.values()) s.sendWindow += delta;
      } else if (key === 0x5) {
        if (value < MAX_FRAME || value > 0xffffff) return this.#protocolError(H2Code.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
        this.#peerMaxFrame = value;
      } else if (key === 0x2 && value > 1) {
        return this.#protocolError(H2Code.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
      }
      // HEADER_TABLE_SIZE: our encoder keeps no dynamic table; MAX_CONCURRENT_STREAMS: a refused
      // stream ends as lost (retryable); MAX_HEADER_LIST_SIZE: our blocks are small.
    }
    this.#queue(frameOf(FrameType.SETTINGS, ACK, 0, Buffer.alloc(0)));
    this.#flushBlocked();
  }

  #goawayFrame(id: number, payload: Buffer): void {
    if (id !== 0) return this.#protocolError(H2Code.PROTOCOL_ERROR, `GOAWAY on stream ${id}`);
    if (payload.length < 8) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, `GOAWAY of ${payload.length} bytes`);
    const last = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    this.#goaway = true;
    // Streams above the last one the server processed were not seen: refused, safe to retry.
    for (const s of [...this.#streams.values()]) {
      if (s.id > last) this.#end(s, H2Code.REFUSED_STREAM, true);
    }
    if (this.#streams.size === 0 && !this.#dead) {
      const debug = payload.subarray(8).toString('utf8');
      this.#fail(new H2ProtocolError(code, `the server sent GOAWAY (HTTP/2 code ${code}${debug === '' ? '' : `: ${debug}`})`), false);
    }
  }

  #windowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.#protocolError(H2Code.FRAME_SIZE_ERROR, `WINDOW_UPDATE of ${payload.length} bytes`);
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) return this.#protocolError(H2Code.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) return this.#protocolError(H2Code.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      return this.#flushBlocked();
    }
    if (this.#idle(id)) return this.#protocolError(H2Code.PROTOCOL_ERROR, `WINDOW_UPDATE on stream ${id}, which was never opened`);
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    if (inc === 0) return this.#streamError(stream, 'WINDOW_UPDATE of 0');
    stream.sendWindow += inc;
    if (stream.sendWindow > MAX_WINDOW) return this.#streamError(stream, 'stream window above 2^31-1', H2Code.FLOW_CONTROL_ERROR);
    if (stream.pending !== undefined) this.#sendBody(stream, []);
  }

  #flushBlocked(): void {
    for (const s of [...this.#blocked]) {
      if (this.#sendWindow <= 0) return;
      this.#sendBody(s, []);
    }
  }
}

/**
 * The SDK's own HTTP/2 client as a GrpcChannel transport; request header blocks are encoded once
 * per method. `firstStreamId` (odd, default 1) lets a test reach the end of the stream ids.
 */
export function socketTransport(options: { readonly firstStreamId?: number } = {}): Transport {
  const blocks = new BoundedCache<string, Buffer>(32);
  return {
    connect: (dial, authority) => new H2Connection(dial, authority, blocks, options.firstStreamId),
  };
}
