// Raw HTTP/2 byte builders for tests of how servers treat clients that misbehave below gRPC:
// malformed frames, undecodable header blocks, half-sent frames, slowloris trickles. Written by
// hand (no HTTP/2 library would send these bytes), after RFC 9113 §4.1 and RFC 7541 §6.2.2.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { eventually } from './eventually.ts';

/** The client connection preface (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME = { DATA: 0, HEADERS: 1, SETTINGS: 4, PING: 6, GOAWAY: 7 } as const;
export const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4 } as const;

/** One frame; `length` overrides the 24-bit length field (to lie about it). */
export function h2Frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(), length = payload.length): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId & 0x7fffffff, 5);
  b.set(payload, 9);
  return b;
}

/** A header block of literal fields without indexing, no Huffman coding (RFC 7541 §6.2.2). */
export function hpackLiterals(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const str = (s: string): Buffer => {
    const v = Buffer.from(s, 'latin1');
    if (v.length >= 127) throw new Error('hpackLiterals: strings of 127 bytes or more are not supported');
    return Buffer.concat([Buffer.from([v.length]), v]);
  };
  for (const [k, v] of Object.entries(headers)) parts.push(Buffer.from([0]), str(k), str(v));
  return Buffer.concat(parts);
}

/** Preface and an empty SETTINGS frame: what every client sends first. */
export function h2Hello(): Buffer {
  return Buffer.concat([H2_PREFACE, h2Frame(FRAME.SETTINGS, 0, 0)]);
}

/** A complete gRPC request's HEADERS (END_HEADERS, END_STREAM: a call with no message). */
export function grpcRequestHeaders(streamId: number, path: string): Buffer {
  const block = hpackLiterals({
    ':method': 'POST',
    ':scheme': 'http',
    ':path': path,
    ':authority': 'localhost',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  return h2Frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, streamId, block);
}

/** The hostile byte sequences, each a class of input a server must survive without keeping the connection. */
export const hostile = {
  /** A SETTINGS frame whose length is not a multiple of 6 (FRAME_SIZE_ERROR). */
  badFrameLength: (): Buffer => Buffer.concat([h2Hello(), h2Frame(FRAME.SETTINGS, 0, 0, Buffer.from([1, 2, 3]))]),
  /** A HEADERS frame whose block cannot be decoded (an index far past the tables: COMPRESSION_ERROR). */
  badHpack: (): Buffer => Buffer.concat([h2Hello(), h2Frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]))]),
  /** The first bytes of a HEADERS frame that announces 64 bytes (the rest never comes). */
  halfFrame: (): Buffer => Buffer.concat([h2Hello(), h2Frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, Buffer.from([0x82]), 64)]),
};

export type RawTarget = { readonly path: string } | { readonly host: string; readonly port: number };

/** A plain socket to a server, connected. */
export function connectRaw(target: RawTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves when the socket is closed (by either side); never rejects. */
export function closedPromise(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.closed) resolve();
    else s.once('close', () => resolve());
    s.on('error', () => {});
    // Read what the server sends (SETTINGS, GOAWAY), so its FIN is seen.
    s.resume();
  });
}

/** Open file descriptors of a process (default this one), from /proc. */
export function openFds(pid: number | 'self' = 'self'): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Polls `check` every 10 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  await eventually(what, check, { timeoutMs });
}

/** Writes `bytes` one byte every `everyMs` until done or the socket closes (a slowloris client). */
export async function trickle(s: net.Socket, bytes: Uint8Array, everyMs: number): Promise<void> {
  for (const b of bytes) {
    if (s.destroyed) return;
    s.write(Buffer.from([b]));
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
