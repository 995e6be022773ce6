import { grpcCodeOf, isZtwimError } from '@ztwim/core';
import { isSpiffeError } from '@ztwim/spiffe';
import type { GrpcCodeResolver } from '@ztwim/proto';

/**
 * The one mapping from our typed errors to gRPC codes at the API boundary:
 * ZtwimError codes carry their gRPC code; SDK validation errors are InvalidArgument.
 */
export const grpcCodeResolver: GrpcCodeResolver = (err) => {
  if (isZtwimError(err)) return grpcCodeOf(err.code);
  if (isSpiffeError(err)) return 3;
  return undefined;
};
