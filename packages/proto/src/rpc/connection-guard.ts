// Bounds on how long a gRPC server keeps a connection that does not behave, so that no client,
// local or remote, can pin file descriptors forever.
//
// Why this exists: when a client sends a valid HTTP/2 preface and then a malformed frame (a
// SETTINGS frame of the wrong length, an undecodable HPACK block, ...), nghttp2 answers GOAWAY
// and stops wanting to read, and Node 20 then stops reading the socket but never closes it
// (nghttp2's own rule is "if neither want_read nor want_write, drop the connection"; Node's
// Http2Session does not apply it and emits no event). Such a socket is never read again, so not
// even the client's hang-up is seen: one fd per connection, forever. grpc-go (SPIRE) closes the
// connection on any framing error at once. Nothing in JavaScript sees that nghttp2 gave up, so
// this module bounds it from outside:
//
// - First request: a connection must send the HEADERS of its first call within `firstRequestMs`
//   of being accepted (for TLS: of its handshake, itself bounded by the same time through
//   `handshakeTimeout`). grpc-go's default ConnectionTimeout is 120 s, but it covers only the
//   TLS handshake and the client preface and SETTINGS, after which a connection may stay forever;
//   every SPIFFE client (go-spiffe, py-spiffe, java-spiffe, spire-agent, our SDK) sends its first
//   call right after connecting, so 10 s costs none of them anything, and it also bounds a
//   slowloris client that trickles the preface or the first HEADERS. The connection is told with
//   GOAWAY(NO_ERROR), which gRPC clients treat as a graceful close (the channel goes idle and
//   reconnects on its next call, without backoff).
// - Liveness: every `probeIntervalMs` each connection is pinged; one that has not acknowledged
//   the previous ping by the next round is closed. This finds connections nghttp2 gave up on
//   after their first call (and dead peers); grpc-go's server keepalive does the same with a
//   2 h interval and a 20 s timeout, which is far too slow to bound a file-descriptor attack, so
//   we ping every 30 s (a dead connection is gone within 60 s). A gRPC client never polices the
//   pings a server sends, so this costs well-behaved clients one 17-byte frame per interval.
// - Stream resets: nghttp2 ends a connection whose client resets streams faster than its
//   rapid-reset defence allows (GOAWAY INTERNAL_ERROR: node:http2 clients, so grpc-js and our SDK,
//   fail every call still open on it; grpc-go drains it). A client that
//   makes one-shot streaming calls in a fast loop (go-spiffe's FetchX509SVID opens the stream,
//   takes the first message and cancels it) gets there after ~1,000 calls. The guard counts the
//   same resets with the same token bucket (reset-budget.ts) and, before nghttp2 would act, closes
//   the connection gracefully: GOAWAY(NO_ERROR) with the last stream it processed, open calls
//   finish, gRPC clients dial again for the next ones. A flood still loses its connection.
// - Errors: a session error or a connection-level frame error closes the connection (Node does
//   this already; we make sure, and the socket itself is destroyed if the close has not
//   finished within a second, e.g. because the peer stopped reading).
//
// What SPIRE does not have we do not add: no per-uid or per-IP connection limit (SPIRE has none
// on the Workload API, the admin socket or the agent port), and no idle timeout on connections
// that completed a call (SPIRE's Unix sockets keep those forever; its TCP port recycles every
// connection after MaxConnectionAge 3 min, which is about load balancing, not defence).
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { acceptedBy } from './authority-layer.ts';
import { ResetBudget, type ResetBudgetOptions } from './reset-budget.ts';

export interface ConnectionLimits {
  /**
   * Time from accept (or end of the TLS handshake) to the first call's HEADERS; default 10 s. On a
   * Unix socket also how long the authority layer waits for that call (authority-layer.ts).
   */
  readonly firstRequestMs?: number;
  /** Interval of the liveness pings; a ping not answered by the next round closes. Default 30 s. */
  readonly probeIntervalMs?: number;
  /** The stream-reset bucket that mirrors nghttp2's (reset-budget.ts); its defaults are nghttp2's. */
  readonly streamResets?: ResetBudgetOptions;
}

export const DEFAULT_FIRST_REQUEST_MS = 10_000;
export const DEFAULT_PROBE_INTERVAL_MS = 30_000;
/** After session.destroy(), how long the socket may take to flush before it is destroyed. */
const FORCE_CLOSE_MS = 1000;

/** Why the guard closed a connection (for logs). */
export type GuardCloseReason = 'no_request_in_time' | 'ping_unanswered' | 'frame_error' | 'stream_resets';

const RAW_SOCKET = Symbol('ztwim.rawSocket');
type Tagged = net.Socket & { [RAW_SOCKET]?: net.Socket };

/**
 * Applies the limits to every connection of `server` (plain or TLS); returns a function that stops
 * the liveness rounds (call it when the server closes).
 */
export function guardConnections(
  server: http2.Http2Server | http2.Http2SecureServer,
  limits: ConnectionLimits,
  onClose: (reason: GuardCloseReason) => void,
): () => void {
  const firstRequestMs = limits.firstRequestMs ?? DEFAULT_FIRST_REQUEST_MS;
  const probeMs = limits.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
  // The socket the session runs on, reachable later even though session.socket refuses destroy().
  // The tag goes on before node:http2's own listener makes the session.
  const tls = 'setSecureContext' in server;
  server.prependListener(tls ? 'secureConnection' : 'connection', (sock: Tagged) => {
    sock[RAW_SOCKET] = sock;
  });

  const sessions = new Map<http2.ServerHttp2Session, { raw: net.Socket | undefined; started: boolean; pinged: boolean }>();

  const close = (s: http2.ServerHttp2Session, reason: GuardCloseReason, code = 0): void => {
    const state = sessions.get(s);
    sessions.delete(s);
    if (s.destroyed) return;
    onClose(reason);
    try {
      s.goaway(code);
    } catch {
      /* a session nghttp2 gave up on refuses it: destroy anyway */
    }
    s.destroy();
    const raw = state?.raw;
    if (raw !== undefined && !raw.destroyed) setTimeout(() => raw.destroy(), FORCE_CLOSE_MS).unref();
  };

  // Graceful: GOAWAY(NO_ERROR) with the last stream nghttp2 processed; calls already open run to
  // their end, and the liveness rounds still bound the connection until they do.
  const drain = (s: http2.ServerHttp2Session, reason: GuardCloseReason): void => {
    if (s.destroyed || s.closed) return;
    onClose(reason);
    s.close();
  };

  server.on('session', (s: http2.ServerHttp2Session) => {
    const raw = (s.socket as Tagged)[RAW_SOCKET];
    // On a Unix socket the authority layer held the connection before node:http2 got it: that
    // time counts (the bound is from accept), and the first call may have come while it did.
    const layer = acceptedBy(s);
    const state = { raw, started: layer?.requestSeen === true, pinged: false };
    sessions.set(s, state);
    let first: NodeJS.Timeout | undefined;
    if (!state.started) {
      const left = layer === undefined ? firstRequestMs : Math.max(0, firstRequestMs - (performance.now() - layer.at));
      first = setTimeout(() => close(s, 'no_request_in_time'), left);
      first.unref();
      s.once('stream', () => {
        clearTimeout(first);
        state.started = true;
      });
    }
    const resets = new ResetBudget(() => performance.now(), limits.streamResets);
    s.on('stream', (st: http2.ServerHttp2Stream) => {
      st.once('close', () => {
        // A non-zero code on a stream we did not reset ourselves is the client's RST_STREAM (our
        // own resets, on internal errors only, count too: that only errs on the safe side).
        if (st.rstCode !== http2.constants.NGHTTP2_NO_ERROR && resets.reset()) drain(s, 'stream_resets');
      });
    });
    s.on('frameError', (_type: number, _code: number, id: number) => {
      if (id === 0) close(s, 'frame_error', 1);
    });
    s.once('close', () => {
      clearTimeout(first);
      sessions.delete(s);
      if (raw !== undefined && !raw.destroyed) raw.destroy();
    });
  });

  const round = setInterval(() => {
    for (const [s, state] of sessions) {
      // Before its first call a connection is bounded by the first-request timer (and may not have
      // sent its preface yet, so it could not answer a ping).
      if (!state.started || s.destroyed || s.closed) continue;
      if (state.pinged) {
        close(s, 'ping_unanswered');
        continue;
      }
      state.pinged = true;
      try {
        s.ping((err) => {
          if (err === null) state.pinged = false;
        });
      } catch {
        close(s, 'ping_unanswered');
      }
    }
  }, probeMs);
  round.unref();
  return () => clearInterval(round);
}
