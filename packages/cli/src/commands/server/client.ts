// Connection to the SPIRE Server API over the admin Unix socket, and gRPC error text as
// spire-server prints it.
import { createClient, ConnectError, Code, type Client } from '@connectrpc/connect';
import type { DescService } from '@bufbuild/protobuf';
import { errnoOf } from '@ztwim/core';
import { createUnixGrpcTransport } from '@ztwim/proto';
import { CommandError } from '../../command.ts';
import { grpcErrorText } from '../../printer/go-format.ts';

export const DEFAULT_SERVER_SOCKET_PATH = '/tmp/spire-server/private/api.sock';

const SYSCALL_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ECONNREFUSED: 'connection refused',
  EACCES: 'permission denied',
  ENOTSOCK: 'socket operation on non-socket',
  EPERM: 'operation not permitted',
  ENAMETOOLONG: 'invalid argument',
};

/**
 * The text spire-server prints for a failed RPC: `rpc error: code = NotFound desc = entry not found`.
 * Dial failures read like grpc-go's (`... dial unix //<path>: connect: no such file or directory`;
 * `dialTarget` replaces `//<path>` for clients that dial the path itself, as spire-agent's).
 */
export function rpcErrorText(e: unknown, socketPath: string, dialTarget = `//${socketPath}`): string {
  if (e instanceof ConnectError) {
    const errno = errnoOf(e.cause);
    if ((e.code === Code.Unavailable || e.code === Code.Internal) && errno !== undefined) {
      const text = SYSCALL_TEXT[errno] ?? errno;
      return grpcErrorText(Code.Unavailable, `connection error: desc = "transport: Error while dialing: dial unix ${dialTarget}: connect: ${text}"`);
    }
    return grpcErrorText(e.code, e.rawMessage);
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * A per-command connection; `rpc()` turns RPC failures into `Error: [prefix]rpc error: …`.
 * `client(Service)` takes the service descriptor from the command's own import: a command loads
 * (and protobuf-es decodes at import) only the descriptors of the services it calls, not the whole
 * Server API (bench/cli.ts).
 */
export interface ServerConnection {
  client<S extends DescService>(service: S): Client<S>;
  readonly socketPath: string;
  rpc<T>(call: () => Promise<T>, prefix?: string): Promise<T>;
}

/** Dials `unix:<socketPath>` (no TLS), runs `fn`, and closes the connection. */
export async function withServer<T>(socketPath: string, fn: (conn: ServerConnection) => Promise<T>): Promise<T> {
  const path = socketPath === '' ? DEFAULT_SERVER_SOCKET_PATH : socketPath;
  const transport = createUnixGrpcTransport(path);
  const clients = new Map<DescService, unknown>();
  const conn: ServerConnection = {
    client<S extends DescService>(service: S): Client<S> {
      let c = clients.get(service) as Client<S> | undefined;
      if (c === undefined) clients.set(service, (c = createClient(service, transport)));
      return c;
    },
    socketPath: path,
    async rpc(call, prefix = '') {
      try {
        return await call();
      } catch (e) {
        throw new CommandError(prefix + rpcErrorText(e, path));
      }
    },
  };
  try {
    return await fn(conn);
  } finally {
    transport.close();
  }
}
