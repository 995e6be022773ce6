// Rewrites the client→server bytes of an HTTP/2 connection so that nghttp2 (Node's HTTP/2) accepts
// every request's `:authority`. grpc-java over a Unix socket sends the socket path
// (`/tmp/spire-agent/public/api.sock`) as `:authority`; nghttp2 resets such a stream with
// PROTOCOL_ERROR before JavaScript sees it, and Node has no switch for that check. SPIRE's Go
// server accepts any authority; the authority means nothing to a gRPC server on a Unix socket.
//
// What nghttp2 1.61 (lib/nghttp2_http.c) rejects in a request, and so what is replaced by
// `localhost`: an `:authority` with an octet outside VALID_AUTHORITY_CHARS below, an empty one
// (check_pseudo_header), and none at all when there is no valid `host` either. An invalid `host`
// beside a valid `:authority` is left alone: nghttp2 ignores it.
//
// HPACK state. nghttp2 decodes blocks with its own dynamic table, which must never differ from the
// table the block's encoder had, or indexed fields decode to something else. The decision is made
// once per connection, on its first header block:
// - it needs no change: this block and every later one are forwarded as the very bytes received
//   (the connection layer then hands the raw socket to nghttp2 anyway), so nghttp2's table is the
//   client's;
// - it needs a change: this block and every later one are decoded with a table that follows the
//   client's encoder (incremental entries, eviction, size updates) and re-encoded as literals
//   without indexing (never-indexed fields stay never-indexed), without Huffman. nghttp2 then never
//   adds an entry and its table stays empty, whatever the client does: no divergence is possible.
//   The client's size updates are not forwarded (they concern its table, not the empty one).
// Editing values in place (same octet length, so table sizes stay equal) was the other way; it
// cannot fix an empty authority sent with incremental indexing, so it is not used.
import { HpackDecoder, HpackError, encodeInteger, encodeString, staticNameIndex, type DecodedRepresentation } from './hpack.ts';

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const FRAME_HEADER = 9;
const TYPE_HEADERS = 0x1;
const TYPE_PRIORITY = 0x2;
const TYPE_SETTINGS = 0x4;
const TYPE_WINDOW_UPDATE = 0x8;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** Frames we emit carry at most this payload: the minimum SETTINGS_MAX_FRAME_SIZE, always allowed. */
const EMIT_MAX_FRAME = 16384;
/** A header block (HEADERS + CONTINUATIONs) larger than this is not inspected. */
const MAX_HEADER_BLOCK = 1 << 20;
/**
 * A frame claiming more than this is not waited for (nghttp2 refuses frames over its
 * SETTINGS_MAX_FRAME_SIZE, 16 KiB unless raised): forwarded for nghttp2 to answer.
 */
const MAX_FRAME_INSPECT = 1 << 20;

// nghttp2 1.61 lib/nghttp2_http.c VALID_AUTHORITY_CHARS (`@` is not allowed there, unlike
// nghttp2_check_authority in nghttp2_helper.c; the HTTP layer uses this one).
const AUTHORITY_CHARS = "!$%&'()*+,-.0123456789:;=ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~";
const VALID_AUTHORITY = new Uint8Array(256);
for (const c of AUTHORITY_CHARS) VALID_AUTHORITY[c.charCodeAt(0)] = 1;
const LOCALHOST = Buffer.from('localhost', 'latin1');

/** True if nghttp2 accepts `value` as `:authority` (or `host`; there, empty is allowed). */
export function isValidAuthority(value: Uint8Array, isHost = false): boolean {
  if (value.length === 0) return isHost;
  for (const b of value) if (VALID_AUTHORITY[b] === 0) return false;
  return true;
}

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return h;
}

export interface RewriterOptions {
  /** The preface was already consumed (default false: the first 24 bytes must be the preface). */
  readonly afterPreface?: boolean;
  /**
   * SETTINGS ACK frames to drop from the stream: acknowledgements of SETTINGS that a layer in
   * front of the server sent itself and the server never did (see unix-connection-layer.ts).
   */
  readonly dropSettingsAcks?: number;
}

/**
 * Incremental client→server HTTP/2 byte rewriter. `push()` returns the bytes to forward. After any
 * protocol violation it stops inspecting and forwards everything as received, leaving the error
 * to nghttp2, so the connection fails as it would without this layer.
 */
export class AuthorityRewriter {
  readonly #decoder = new HpackDecoder();
  #pending: Buffer[] = [];
  #pendingLength = 0;
  #prefaceSeen: boolean;
  #passthrough = false;
  #dropAcks: number;
  #highestStreamId = 0;
  /** Decided on the first header block: undefined until then. */
  #reencode: boolean | undefined;
  /** Frames of a header block waiting for END_HEADERS. */
  #block: { streamId: number; flags: number; priority: Buffer | undefined; frames: Buffer[]; fragments: Buffer[]; size: number } | undefined;

  /** Counters the connection layer decides on. */
  headerBlocks = 0;
  rewrittenBlocks = 0;
  /** Frames other than SETTINGS, WINDOW_UPDATE, PRIORITY, HEADERS and CONTINUATION. */
  otherFrames = 0;
  settingsAcksDropped = 0;

  constructor(opts: RewriterOptions = {}) {
    this.#prefaceSeen = opts.afterPreface ?? false;
    this.#dropAcks = opts.dropSettingsAcks ?? 0;
  }

  /** True once the client preface arrived intact (or was consumed before). */
  get prefaceSeen(): boolean {
    return this.#prefaceSeen;
  }
  /** True once the stream was found not to be HTTP/2 as expected: bytes are forwarded as they are. */
  get passthrough(): boolean {
    return this.#passthrough;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.#passthrough) return [chunk];
    this.#pending.push(chunk);
    this.#pendingLength += chunk.length;
    const out: Buffer[] = [];
    try {
      this.#drain(out);
    } catch (e) {
      if (!(e instanceof HpackError)) throw e;
      this.#giveUp(out);
    }
    return out;
  }

  /** Everything received and not yet returned by push() (a partial frame or header block). */
  takeBuffered(): Buffer[] {
    const out: Buffer[] = [];
    if (this.#block !== undefined) out.push(...this.#block.frames);
    this.#block = undefined;
    if (this.#pendingLength > 0) out.push(...this.#pending);
    this.#pending = [];
    this.#pendingLength = 0;
    return out;
  }

  #giveUp(out: Buffer[]): void {
    out.push(...this.takeBuffered());
    this.#passthrough = true;
  }

  #take(n: number): Buffer {
    const all = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingLength);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingLength = rest.length;
    return head;
  }

  #peek(n: number): Buffer {
    if (this.#pending[0]!.length >= n) return this.#pending[0]!.subarray(0, n);
    const all = Buffer.concat(this.#pending, this.#pendingLength);
    this.#pending = [all];
    return all.subarray(0, n);
  }

  #drain(out: Buffer[]): void {
    if (!this.#prefaceSeen) {
      const n = Math.min(this.#pendingLength, CLIENT_PREFACE.length);
      if (n === 0) return;
      if (!this.#peek(n).equals(CLIENT_PREFACE.subarray(0, n))) {
        this.#giveUp(out);
        return;
      }
      if (n < CLIENT_PREFACE.length) return;
      out.push(this.#take(CLIENT_PREFACE.length));
      this.#prefaceSeen = true;
    }
    while (this.#pendingLength >= FRAME_HEADER) {
      const h = this.#peek(FRAME_HEADER);
      const length = h.readUIntBE(0, 3);
      if (length > MAX_FRAME_INSPECT) {
        this.#giveUp(out);
        return;
      }
      if (this.#pendingLength < FRAME_HEADER + length) return;
      const type = h[3]!;
      const flags = h[4]!;
      const streamId = h.readUInt32BE(5) & 0x7fffffff;
      const frame = this.#take(FRAME_HEADER + length);
      if (this.#block !== undefined && type !== TYPE_CONTINUATION) {
        // Only CONTINUATION may follow an unfinished header block: nghttp2 will say so.
        this.#pending.unshift(frame);
        this.#pendingLength += frame.length;
        this.#giveUp(out);
        return;
      }
      switch (type) {
        case TYPE_HEADERS:
          this.#onHeaders(frame, flags, streamId, out);
          break;
        case TYPE_CONTINUATION:
          this.#onContinuation(frame, flags, streamId, out);
          break;
        case TYPE_SETTINGS:
          if ((flags & FLAG_ACK) !== 0 && this.#dropAcks > 0) {
            this.#dropAcks--;
            this.settingsAcksDropped++;
            break;
          }
          out.push(frame);
          break;
        case TYPE_WINDOW_UPDATE:
        case TYPE_PRIORITY:
          out.push(frame);
          break;
        default:
          this.otherFrames++;
          out.push(frame);
      }
      if (this.#passthrough) return;
    }
  }

  #onHeaders(frame: Buffer, flags: number, streamId: number, out: Buffer[]): void {
    const payload = frame.subarray(FRAME_HEADER);
    let start = 0;
    let end = payload.length;
    if (flags & FLAG_PADDED) {
      end -= payload.length > 0 ? payload[0]! : 1;
      start = 1;
    }
    let priority: Buffer | undefined;
    if (flags & FLAG_PRIORITY) {
      priority = payload.subarray(start, start + 5);
      start += 5;
    }
    if (end < start) {
      // Malformed: forwarded as it is, for nghttp2 to refuse.
      out.push(frame);
      throw new HpackError('http2: HEADERS padding longer than payload');
    }
    const fragment = payload.subarray(start, end);
    this.#block = { streamId, flags, priority, frames: [frame], fragments: [fragment], size: fragment.length };
    if (flags & FLAG_END_HEADERS) this.#finishBlock(out);
  }

  #onContinuation(frame: Buffer, flags: number, streamId: number, out: Buffer[]): void {
    const block = this.#block;
    if (block === undefined || block.streamId !== streamId) {
      out.push(frame);
      this.#giveUp(out);
      return;
    }
    const fragment = frame.subarray(FRAME_HEADER);
    block.frames.push(frame);
    block.fragments.push(fragment);
    block.size += fragment.length;
    if (block.size > MAX_HEADER_BLOCK) throw new HpackError('http2: header block too large to inspect'); // forwarded by #giveUp
    if (flags & FLAG_END_HEADERS) this.#finishBlock(out);
  }

  #finishBlock(out: Buffer[]): void {
    const block = this.#block!;
    this.#block = undefined;
    this.headerBlocks++;
    // The first HEADERS of a stream carries the request; a later one on the same stream, trailers.
    const isRequest = block.streamId > this.#highestStreamId;
    if (isRequest) this.#highestStreamId = block.streamId;
    const bytes = block.fragments.length === 1 ? block.fragments[0]! : Buffer.concat(block.fragments, block.size);
    let reps: DecodedRepresentation[];
    try {
      reps = this.#decoder.decode(bytes);
    } catch (e) {
      out.push(...block.frames);
      throw e;
    }
    this.#reencode ??= needsRewrite(reps, isRequest);
    if (!this.#reencode) {
      out.push(...block.frames);
      return;
    }
    this.rewrittenBlocks++;
    out.push(...encodeFrames(block, reencode(reps, isRequest)));
  }
}

function needsRewrite(reps: readonly DecodedRepresentation[], isRequest: boolean): boolean {
  let authority = false;
  let host = false;
  for (const r of reps) {
    if (r.field === undefined) continue;
    if (r.field.name === ':authority') {
      if (!isValidAuthority(r.field.value)) return true;
      authority = true;
    } else if (r.field.name === 'host' && isValidAuthority(r.field.value, true)) {
      host = true;
    }
  }
  return isRequest && !authority && !host;
}

/** The block's fields as literals without indexing (the authority fixed), see the file header. */
function reencode(reps: readonly DecodedRepresentation[], isRequest: boolean): Buffer {
  const out: number[] = [];
  const literal = (name: string, value: Uint8Array, neverIndexed: boolean): void => {
    const index = staticNameIndex(name);
    encodeInteger(out, index ?? 0, 4, neverIndexed ? 0x10 : 0x00);
    if (index === undefined) encodeString(out, Buffer.from(name, 'latin1'), false);
    encodeString(out, value, false);
  };
  if (isRequest && needsRewrite(reps, true) && !reps.some((r) => r.field?.name === ':authority')) literal(':authority', LOCALHOST, false);
  for (const r of reps) {
    const f = r.field;
    if (f === undefined) continue;
    const value = f.name === ':authority' && !isValidAuthority(f.value) ? LOCALHOST : f.value;
    literal(f.name, value, r.kind === 'never-indexed');
  }
  return Buffer.from(out);
}
function encodeFrames(block: { streamId: number; flags: number; priority: Buffer | undefined }, fragment: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  const firstRoom = EMIT_MAX_FRAME - (block.priority?.length ?? 0);
  const first = fragment.subarray(0, firstRoom);
  let rest = fragment.subarray(first.length);
  // Padding is dropped (it carries nothing); END_STREAM and PRIORITY are kept.
  let flags = block.flags & (FLAG_END_STREAM | FLAG_PRIORITY);
  if (rest.length === 0) flags |= FLAG_END_HEADERS;
  const payload = block.priority === undefined ? first : Buffer.concat([block.priority, first]);
  frames.push(frameHeader(payload.length, TYPE_HEADERS, flags, block.streamId), payload);
  while (rest.length > 0) {
    const part = rest.subarray(0, EMIT_MAX_FRAME);
    rest = rest.subarray(part.length);
    frames.push(frameHeader(part.length, TYPE_CONTINUATION, rest.length === 0 ? FLAG_END_HEADERS : 0, block.streamId), part);
  }
  return frames;
}
