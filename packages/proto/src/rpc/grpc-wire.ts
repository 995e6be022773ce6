// gRPC over HTTP/2 at the byte level, shared by the servers that answer calls directly on
// node:http2 streams (the direct unary path of startGrpcServer, the agent's Workload API server):
// length-prefixed messages, request decompression, grpc-timeout, grpc-message encoding.
import type * as http2 from 'node:http2';
import * as zlib from 'node:zlib';
import { Code, ConnectError } from '@connectrpc/connect';

/** Length prefix of every gRPC message: 1 flag byte + 4 bytes big-endian length. */
export const GRPC_HDR = 5;

/** Response headers of every successful gRPC response. */
export const GRPC_OK_HEADERS = { ':status': 200, 'content-type': 'application/grpc' } as const;

/** application/grpc or application/grpc+proto (with or without parameters); not +json. */
export function isGrpcProtoContentType(ct: unknown): boolean {
  if (typeof ct !== 'string') return false;
  const base = ct.split(';', 1)[0]!.trim().toLowerCase();
  return base === 'application/grpc' || base === 'application/grpc+proto';
}

/** grpc-message: percent-encode everything outside printable ASCII, and '%'. */
export function encodeGrpcMessage(m: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(m)) return m;
  let out = '';
  for (const b of Buffer.from(m, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** grpc-timeout → milliseconds, undefined when absent or malformed. */
export function parseGrpcTimeout(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (m === null) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return n / 1000;
    default:
      return n / 1e6;
  }
}

/** The length prefix of one uncompressed gRPC message of `length` bytes. */
export function grpcPrefix(length: number): Buffer {
  const p = Buffer.allocUnsafe(GRPC_HDR);
  p[0] = 0;
  p.writeUInt32BE(length, 1);
  return p;
}

/** One uncompressed gRPC message: prefix and bytes in one buffer (one write, one DATA frame run). */
export function grpcFrame(bytes: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(GRPC_HDR + bytes.length);
  f[0] = 0;
  f.writeUInt32BE(bytes.length, 1);
  f.set(bytes, GRPC_HDR);
  return f;
}

/**
 * Reads a request body to its end. A body over `maxMessageBytes` (plus the prefix) is drained and
 * dropped, and `done` gets `undefined`: the caller answers ResourceExhausted.
 */
export function collectRequestBody(stream: http2.ServerHttp2Stream, maxMessageBytes: number, done: (body: Buffer | undefined) => void): void {
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  let tooBig = false;
  stream.on('data', (c: Buffer) => {
    if (tooBig) return;
    size += c.length;
    if (size > maxMessageBytes + GRPC_HDR) {
      tooBig = true;
      first = undefined;
      chunks = undefined;
      return;
    }
    if (first === undefined) first = c;
    else (chunks ??= [first]).push(c);
  });
  stream.once('end', () => {
    done(tooBig ? undefined : chunks !== undefined ? Buffer.concat(chunks) : (first ?? Buffer.alloc(0)));
  });
}

/**
 * The one message of a unary or server-streaming request, decompressed (gzip, deflate).
 * Errors are ConnectErrors with the codes connect-es gives for the same faults.
 */
export function unaryRequestPayload(headers: http2.IncomingHttpHeaders, body: Buffer, maxMessageBytes: number): Uint8Array {
  if (body.length === 0) throw new ConnectError('protocol error: missing input message for unary method', Code.Unimplemented);
  if (body.length < GRPC_HDR) throw new ConnectError('protocol error: incomplete envelope', Code.InvalidArgument);
  const flags = body[0]!;
  const len = body.readUInt32BE(1);
  if (GRPC_HDR + len > body.length) throw new ConnectError(`protocol error: promised ${len} bytes, received ${body.length - GRPC_HDR}`, Code.InvalidArgument);
  if (GRPC_HDR + len < body.length) throw new ConnectError('protocol error: received extra input message for unary method', Code.Unimplemented);
  let payload: Uint8Array = body.subarray(GRPC_HDR);
  if ((flags & 1) === 1) {
    const enc = headers['grpc-encoding'];
    try {
      if (enc === 'gzip') payload = zlib.gunzipSync(payload, { maxOutputLength: maxMessageBytes });
      else if (enc === 'deflate') payload = zlib.inflateSync(payload, { maxOutputLength: maxMessageBytes });
      else throw new ConnectError(`protocol error: received compressed message with encoding ${String(enc ?? 'identity')}`, Code.Internal);
    } catch (e) {
      if (e instanceof ConnectError) throw e;
      if ((e as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ConnectError(`decompressed message size is larger than configured readMaxBytes ${maxMessageBytes}`, Code.ResourceExhausted);
      }
      throw new ConnectError('invalid compressed request message', Code.InvalidArgument);
    }
  }
  return payload;
}

/** HTTP/2 request or response headers as a fetch Headers object (pseudo-headers dropped). */
export function fetchHeaders(h: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(':') || v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.append(k, x);
    else out.append(k, String(v));
  }
  return out;
}
