// The RPC error boundary: handlers throw (or the mapper produces) ConnectError
// with a gRPC `Code`; everything else becomes Internal.
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { PermissionDeniedDetailsSchema, type PermissionDeniedDetails_Reason } from '../gen/spire/api/types/status_pb.ts';

/** Returns the gRPC code for an application error, or undefined if it is not one (e.g. `grpcCodeOf` of @ztwim/core). */
export type GrpcCodeResolver = (err: unknown) => number | undefined;

function isCode(n: number): n is Code {
  return Number.isInteger(n) && n >= 1 && n <= 16;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Converts any thrown value to a ConnectError. ConnectErrors pass through; errors the
 * resolver knows get its code; anything else is Internal. The message is kept as is
 * (`rawMessage`), so clients see exactly the text the server chose.
 */
export function toConnectError(err: unknown, resolve?: GrpcCodeResolver): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = resolve?.(err);
  return new ConnectError(messageOf(err), code !== undefined && isCode(code) ? code : Code.Internal, undefined, undefined, err);
}

/** A server interceptor that applies `toConnectError` to whatever a handler throws. */
export function errorMappingInterceptor(resolve: GrpcCodeResolver): Interceptor {
  return (next) => async (req) => {
    let res;
    try {
      res = await next(req);
    } catch (e) {
      throw toConnectError(e, resolve);
    }
    // A streaming handler throws while its response messages are being produced, after `next`
    // has returned: map those errors too, or they would all reach the client as Internal.
    if (!res.stream) return res;
    return { ...res, message: mapStreamErrors(res.message, resolve) };
  };
}

async function* mapStreamErrors<T>(messages: AsyncIterable<T>, resolve: GrpcCodeResolver): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    throw toConnectError(e, resolve);
  }
}

/** `spire.api.types.Status` init (per-item result of batch RPCs) for an error, or OK for undefined. */
export function statusOf(err: unknown, resolve?: GrpcCodeResolver): { code: number; message: string } {
  if (err === undefined) return { code: 0, message: 'OK' };
  const ce = toConnectError(err, resolve);
  return { code: ce.code, message: ce.rawMessage };
}

/**
 * PermissionDenied carrying `spire.api.types.PermissionDeniedDetails` in
 * `grpc-status-details-bin`, as the SPIRE server sends to agents it refuses.
 */
export function permissionDeniedError(message: string, reason: PermissionDeniedDetails_Reason): ConnectError {
  return new ConnectError(message, Code.PermissionDenied, undefined, [{ desc: PermissionDeniedDetailsSchema, value: { reason } }]);
}

/** The PermissionDeniedDetails reason carried by an error received from a server, if any. */
export function permissionDeniedReasonOf(err: unknown): PermissionDeniedDetails_Reason | undefined {
  if (!(err instanceof ConnectError) || err.code !== Code.PermissionDenied) return undefined;
  const [d] = err.findDetails(PermissionDeniedDetailsSchema);
  return d?.reason;
}
