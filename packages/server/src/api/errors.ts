import { grpcCodeOfError } from '@ztwim/core';
import type { GrpcCodeResolver } from '@ztwim/proto';

/**
 * The one mapping from our typed errors to gRPC codes at the API boundary:
 * ZtwimError codes carry their gRPC code; SDK validation errors are InvalidArgument.
 */
export const grpcCodeResolver: GrpcCodeResolver = grpcCodeOfError;
