// A layer between an accepted Unix-socket connection and node:http2, so that requests whose
// `:authority` nghttp2 would reset (grpc-java sends the socket path) reach the server, while
// every other connection is handed to nghttp2 as the raw socket, exactly as before.
//
// Per connection:
// 1. Read the client preface. (Anything else: hand the raw socket to nghttp2, which refuses it.)
// 2. Send a SETTINGS frame with no parameters: the server connection preface. gRPC clients
//    (grpc-java, grpc-go) send no request before the server's preface, and nghttp2 cannot send its
//    own yet: it starts only once the connection is handed to it. Nothing in that SETTINGS changes
//    a default, and nghttp2's own SETTINGS follow as an ordinary update. The client's ACK of it is
//    removed from the byte stream, since nghttp2 never sent it (it would take the ACK for its own).
// 3. Read until that ACK and the first complete header block (or any frame other than SETTINGS,
//    WINDOW_UPDATE and PRIORITY, or `decisionTimeoutMs`) have arrived, rewriting as in
//    authority-rewrite.ts.
// 4. If nothing needed rewriting and the ACK came, put the bytes read back (`unshift`) and hand the raw socket to
//    nghttp2, which reads what is buffered first: the fast path, no JavaScript on the data path and
//    the socket's fd where SO_PEERCRED reads it. Otherwise hand nghttp2 a Duplex that runs every
//    later client→server byte through the same rewriter (its HPACK table already in step); server
//    →client bytes go straight to the socket.
// `acceptedSocketOf(session)` gives the Unix socket under either kind of session.
import { closeSync } from 'node:fs';
import type * as http2 from 'node:http2';
import { Socket } from 'node:net';
import type * as net from 'node:net';
import { Duplex } from 'node:stream';
import { AuthorityRewriter } from './authority-rewrite.ts';

/** An empty SETTINGS frame (length 0, type 4, flags 0, stream 0). */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const DEFAULT_DECISION_TIMEOUT_MS = 10_000;

interface Accepted {
  readonly socket: net.Socket;
  /** `performance.now()` at accept. */
  readonly at: number;
  /** Whether a complete header block (the first call) had arrived when the layer handed over. */
  readonly requestSeen: boolean;
}
const acceptedSockets = new WeakMap<http2.Http2Session, Accepted>();

/** The Unix socket a session came on (for SO_PEERCRED), whether or not its bytes are rewritten. */
export function acceptedSocketOf(session: http2.Http2Session): net.Socket | undefined {
  return acceptedSockets.get(session)?.socket;
}

/**
 * When the layer accepted the session's connection and whether the first call had come, for the
 * connection guard's first-request bound: the time spent here, before node:http2 had the
 * connection, counts.
 */
export function acceptedBy(session: http2.Http2Session): { readonly at: number; readonly requestSeen: boolean } | undefined {
  return acceptedSockets.get(session);
}

export interface AuthorityLayerOptions {
  /**
   * How long to wait for the client's first request before handing the connection over anyway
   * (default 10 s: the connection guard's first-request time, which counts from accept, so a
   * silent client is closed by then). It must not be short: on a busy process every connection
   * of a burst waits here for its turn, and one decided by the timer costs more (see `finish`).
   */
  readonly decisionTimeoutMs?: number;
  /**
   * Called with each accepted socket at once, before anything is read from it (e.g. to pin the
   * peer process at accept time, as SPIRE's peertracker does, while the session starts later).
   */
  readonly onAccept?: (socket: net.Socket) => void;
  /**
   * Takes up to `max` more connections from the listening socket's queue at once (their fds), e.g.
   * @ztwim/peercred's acceptPendingConnections. libuv accepts one connection per event-loop turn,
   * so on a busy process (workloads calling in a loop) a burst of new clients waits in the queue
   * for as many turns as there are clients: 1,000 at 20 turns a second is 50 s. Called after each
   * connection the event loop accepts; the connections it returns are served the same way.
   */
  readonly acceptPending?: (listenFd: number, max: number) => readonly number[];
}

/** Connections taken from the queue per event-loop accept (see `acceptPending`). */
const ACCEPT_BATCH = 256;

/** The fd of a listening net.Server (node's Pipe/TCP handle exposes it on Unix). */
function listenFdOf(server: net.Server): number | undefined {
  const fd = (server as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

type ConnectionListener = (this: net.Server, socket: net.Socket | Duplex) => void;

const installed = new WeakMap<net.Server, Array<(socket: net.Socket) => void>>();

/**
 * Puts the layer in front of `server`'s connection handling (node:http2's listener). Call after
 * creating the http2 server and before it listens. Calling it again on the same server only adds
 * its `onAccept`.
 */
export function acceptAnyAuthority(server: net.Server, opts: AuthorityLayerOptions = {}): void {
  const known = installed.get(server);
  if (known !== undefined) {
    if (opts.onAccept !== undefined) known.push(opts.onAccept);
    return;
  }
  const onAccept = opts.onAccept === undefined ? [] : [opts.onAccept];
  installed.set(server, onAccept);
  const handlers = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  const timeoutMs = opts.decisionTimeoutMs ?? DEFAULT_DECISION_TIMEOUT_MS;
  let handing: Accepted | undefined;
  // node:http2 makes and announces the session synchronously inside its connection listener.
  server.prependListener(
    'session' as 'connection',
    ((session: http2.Http2Session) => {
      if (handing !== undefined) acceptedSockets.set(session, handing);
    }) as never,
  );
  const handOver = (raw: net.Socket, acceptedAt: number, requestSeen: boolean, socket: net.Socket | Duplex): void => {
    // Also when the server closed while we read: node:http2 then answers the call with the
    // server's retryable shutdown status (a destroyed socket would reach the client as CANCEL).
    handing = { socket: raw, at: acceptedAt, requestSeen };
    try {
      for (const h of handlers) h.call(server, socket);
    } finally {
      handing = undefined;
    }
  };
  const serve = (raw: net.Socket): void => {
    const acceptedAt = performance.now();
    for (const f of onAccept) f(raw);
    decide(raw, timeoutMs, (requestSeen, socket) => handOver(raw, acceptedAt, requestSeen, socket));
  };
  const acceptPending = opts.acceptPending;
  server.on('connection', (raw: net.Socket) => {
    serve(raw);
    const listenFd = acceptPending === undefined ? undefined : listenFdOf(server);
    if (acceptPending === undefined || listenFd === undefined) return;
    for (const fd of acceptPending(listenFd, ACCEPT_BATCH)) {
      let socket: net.Socket;
      try {
        socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: false });
      } catch {
        closeSync(fd); // not a socket we can serve: this connection ends, the others go on
        continue;
      }
      serve(socket);
    }
  });
}

function decide(raw: net.Socket, timeoutMs: number, handOver: (requestSeen: boolean, s: net.Socket | Duplex) => void): void {
  const rewriter = new AuthorityRewriter({ dropSettingsAcks: 1 });
  const out: Buffer[] = [];
  let sentSettings = false;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    raw.off('data', onData);
    raw.off('error', onFail);
    raw.off('close', onFail);
    raw.pause(); // unshifted bytes stay buffered for node:http2, which reads them first
    // The client's ACK of our SETTINGS may still be on its way (decided by the timeout: a busy
    // process or a starved client). nghttp2 would take it for the ACK of its own SETTINGS and
    // then refuse the real one as unexpected (GOAWAY: the client's calls fail), so such a
    // connection keeps the rewriter, which drops that ACK whenever it comes.
    const ackOwed = sentSettings && rewriter.settingsAcksDropped === 0;
    if (rewriter.passthrough || (rewriter.rewrittenBlocks === 0 && !ackOwed)) {
      const buffered = [...out, ...rewriter.takeBuffered()];
      if (buffered.length > 0) raw.unshift(Buffer.concat(buffered));
      handOver(rewriter.headerBlocks > 0, raw);
      return;
    }
    handOver(rewriter.headerBlocks > 0, new RewritingStream(raw, rewriter, out));
  };
  const onData = (chunk: Buffer): void => {
    try {
      out.push(...rewriter.push(chunk));
    } catch {
      onFail(); // a fault of ours: this connection ends, the process goes on
      return;
    }
    if (rewriter.passthrough) {
      finish();
      return;
    }
    if (rewriter.prefaceSeen && !sentSettings) {
      sentSettings = true;
      raw.write(EMPTY_SETTINGS);
    }
    if (rewriter.settingsAcksDropped > 0 && (rewriter.headerBlocks > 0 || rewriter.otherFrames > 0)) finish();
  };
  const onFail = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    raw.destroy();
  };
  const timer = setTimeout(finish, timeoutMs);
  timer.unref();
  raw.on('data', onData);
  raw.on('error', onFail);
  raw.on('close', onFail);
}

/**
 * The socket as nghttp2 sees it on a rewritten connection: reads come through the rewriter,
 * writes go to the socket untouched. (node:http2 wraps a Duplex that is not a native stream in
 * its own JS stream socket.)
 */
class RewritingStream extends Duplex {
  readonly #raw: net.Socket;

  constructor(raw: net.Socket, rewriter: AuthorityRewriter, first: readonly Buffer[]) {
    super({ allowHalfOpen: false });
    this.#raw = raw;
    for (const b of first) this.push(b);
    raw.on('data', (chunk: Buffer) => {
      let parts: Buffer[];
      try {
        parts = rewriter.push(chunk);
      } catch (e) {
        this.destroy(e instanceof Error ? e : new Error(String(e))); // a fault of ours: this connection only
        return;
      }
      let more = true;
      for (const b of parts) more = this.push(b) && more;
      if (!more) raw.pause();
    });
    raw.on('end', () => this.push(null));
    raw.on('error', (e) => this.destroy(e));
    raw.on('close', () => this.destroy());
  }

  override _read(): void {
    this.#raw.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#raw.write(chunk, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#raw.end(cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#raw.destroy();
    cb(err);
  }
}
