// A raw HTTP/2 client for tests: it writes frames byte by byte with our HPACK encoder, so it can
// send what node:http2's client refuses to (an `:authority` with `/`, none at all, chosen HPACK
// forms, padding, CONTINUATION), and it reads the server's frames back. Not for production use.
import * as net from 'node:net';
import { CLIENT_PREFACE } from '../rpc/authority-rewrite.ts';
import { HpackDecoder, HpackEncoder, type EncodeField } from '../rpc/hpack.ts';

export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array()): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

/** What the client got back on one stream. */
export interface StreamResult {
  readonly headers: Map<string, string>;
  readonly data: Buffer;
  /** RST_STREAM error code, if the server reset the stream. */
  readonly reset: number | undefined;
}

export interface HeadersOptions {
  /** Split the block into this many frames (HEADERS + CONTINUATIONs). */
  readonly fragments?: number;
  /** Pad the HEADERS frame with this many octets. */
  readonly padding?: number;
  /** Add the PRIORITY fields (depends on stream 0, weight 16). */
  readonly priority?: boolean;
  /** Dynamic table size updates at the start of the block. */
  readonly sizeUpdates?: readonly number[];
}

export class RawH2Client {
  readonly encoder = new HpackEncoder();
  readonly #decoder = new HpackDecoder();
  readonly #socket: net.Socket;
  #buf = Buffer.alloc(0);
  #nextStreamId = 1;
  readonly #streams = new Map<number, { headers: Map<string, string>; data: Buffer[]; reset: number | undefined; done: () => void; finished: Promise<void> }>();
  goaway: { code: number; lastStreamId: number; debug: string } | undefined;
  closed = false;
  readonly #closedWaiters: Array<() => void> = [];
  serverSettingsFrames = 0;
  /** While true, SETTINGS ACKs are held back (so a test can write a frame in parts). */
  holdAcks = false;
  #heldAcks = 0;
  pingAcks = 0;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      for (const s of this.#streams.values()) s.done();
      for (const w of this.#closedWaiters) w();
    });
  }

  /** Connects and sends the client preface and an empty SETTINGS frame. */
  static async connect(path: string): Promise<RawH2Client> {
    const socket = net.connect({ path });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawH2Client(socket);
    socket.write(Buffer.concat([CLIENT_PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
    return c;
  }

  write(bytes: Buffer): void {
    this.#socket.write(bytes);
  }

  /** Sends a request's HEADERS (END_STREAM: a request without body) and resolves with the answer. */
  request(fields: readonly EncodeField[], opts: HeadersOptions = {}): Promise<StreamResult> {
    const { id, result } = this.openStream();
    this.write(this.headersFrames(id, fields, opts, FLAG.END_STREAM));
    return result;
  }

  /** A new stream id, and the answer on that stream (the caller writes its frames). */
  openStream(): { id: number; result: Promise<StreamResult> } {
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    return { id, result: this.#track(id) };
  }

  /** Encodes `fields` and frames them for stream `id` as `opts` says. */
  headersFrames(id: number, fields: readonly EncodeField[], opts: HeadersOptions, flags: number): Buffer {
    const block = Buffer.from(this.encoder.encode(fields, opts.sizeUpdates ?? []));
    const n = Math.max(1, opts.fragments ?? 1);
    const size = Math.ceil(block.length / n);
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) parts.push(block.subarray(i * size, (i + 1) * size));
    const out: Buffer[] = [];
    let first = parts[0]!;
    let f = flags | (n === 1 ? FLAG.END_HEADERS : 0);
    if (opts.priority === true) {
      first = Buffer.concat([Buffer.from([0, 0, 0, 0, 15]), first]);
      f |= FLAG.PRIORITY;
    }
    if (opts.padding !== undefined) {
      first = Buffer.concat([Buffer.from([opts.padding]), first, Buffer.alloc(opts.padding)]);
      f |= FLAG.PADDED;
    }
    out.push(frame(FRAME.HEADERS, f, id, first));
    for (let i = 1; i < n; i++) out.push(frame(FRAME.CONTINUATION, i === n - 1 ? FLAG.END_HEADERS : 0, id, parts[i]!));
    return Buffer.concat(out);
  }

  /** Sends the SETTINGS ACKs held back while `holdAcks` was set. */
  releaseAcks(): void {
    this.holdAcks = false;
    for (; this.#heldAcks > 0; this.#heldAcks--) this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
  }

  ping(): void {
    this.write(frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
  }

  waitClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.#closedWaiters.push(r));
  }

  close(): void {
    this.#socket.destroy();
  }

  #track(id: number): Promise<StreamResult> {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const s = { headers: new Map<string, string>(), data: [] as Buffer[], reset: undefined as number | undefined, done, finished };
    this.#streams.set(id, s);
    return finished.then(() => ({ headers: s.headers, data: Buffer.concat(s.data), reset: s.reset }));
  }

  #onData(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) return;
      const type = this.#buf[3]!;
      const flags = this.#buf[4]!;
      const id = this.#buf.readUInt32BE(5) & 0x7fffffff;
      const payload = this.#buf.subarray(9, 9 + len);
      this.#buf = this.#buf.subarray(9 + len);
      this.#onFrame(type, flags, id, payload);
    }
  }

  #onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    const s = this.#streams.get(id);
    switch (type) {
      case FRAME.SETTINGS:
        if ((flags & FLAG.ACK) === 0) {
          this.serverSettingsFrames++;
          if (this.holdAcks) this.#heldAcks++;
          else this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        }
        return;
      case FRAME.PING:
        if (flags & FLAG.ACK) this.pingAcks++;
        return;
      case FRAME.GOAWAY:
        this.goaway = { code: payload.readUInt32BE(4), lastStreamId: payload.readUInt32BE(0) & 0x7fffffff, debug: payload.subarray(8).toString() };
        return;
      case FRAME.HEADERS: {
        // The server's responses: decoded in order (its own dynamic table), no padding/priority.
        for (const r of this.#decoder.decode(payload)) {
          if (r.field !== undefined && s !== undefined) s.headers.set(r.field.name, Buffer.from(r.field.value).toString('latin1'));
        }
        if (flags & FLAG.END_STREAM) s?.done();
        return;
      }
      case FRAME.DATA:
        s?.data.push(Buffer.from(payload));
        if (payload.length > 0) {
          // Give the flow-control window back at once (connection and stream).
          const inc = Buffer.alloc(4);
          inc.writeUInt32BE(payload.length);
          this.write(Buffer.concat([frame(FRAME.WINDOW_UPDATE, 0, 0, inc), ...(flags & FLAG.END_STREAM ? [] : [frame(FRAME.WINDOW_UPDATE, 0, id, inc)])]));
        }
        if (flags & FLAG.END_STREAM) s?.done();
        return;
      case FRAME.RST_STREAM:
        if (s !== undefined) {
          s.reset = payload.readUInt32BE(0);
          s.done();
        }
        return;
      default:
    }
  }
}
