// A call that never reached the server (the socket could not be dialled) fails with
// Unavailable, as in grpc-go, whatever errno the dial gave: connect-node makes ECONNREFUSED
// Unavailable but ENOENT (a missing Unix socket), EACCES or ENOTSOCK Internal, and a client
// that takes Internal for "the server answered" (a health probe) would call a dead peer alive.
import { Code, ConnectError } from '@connectrpc/connect';

/** The Node system error of a failed dial (`syscall` connect or getaddrinfo) in `e`'s cause chain. */
export function dialErrorOf(e: unknown): NodeJS.ErrnoException | undefined {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 8; depth++) {
    const syscall = (cur as NodeJS.ErrnoException).syscall;
    if (syscall === 'connect' || syscall === 'getaddrinfo') return cur as NodeJS.ErrnoException;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** `e` as a ConnectError, with code Unavailable when it is a dial failure. */
export function withDialCode(e: unknown): ConnectError {
  const ce = ConnectError.from(e);
  if (ce.code === Code.Unavailable || dialErrorOf(e) === undefined) return ce;
  return new ConnectError(ce.rawMessage, Code.Unavailable, ce.metadata, undefined, ce.cause ?? e);
}
