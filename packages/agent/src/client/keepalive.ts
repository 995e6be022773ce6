// The keepalive settings of the agent's server connection (server_keepalive_interval / _timeout).
/**
 * The agent's keepalive on its server connection, as gRPC's client keepalive (A8): while a call
 * is open and nothing came from the server for `intervalMs`, a PING is sent, and a PING left
 * unanswered for `timeoutMs` closes the connection (its calls fail Unavailable and fail over). A
 * connection idle for longer than `intervalMs` is checked with a PING before its next call, and a
 * new connection must finish its TLS handshake within `timeoutMs`.
 */
export interface ServerKeepalive {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/**
 * Defaults: grpc-go's smallest keepalive time (10 s) and a 5 s answer time, so a call on a hung
 * server fails over after at most 15 s, half of its 30 s deadline (server-client.ts CALL_TIMEOUT_MS).
 */
export const DEFAULT_SERVER_KEEPALIVE: ServerKeepalive = { intervalMs: 10_000, timeoutMs: 5_000 };
