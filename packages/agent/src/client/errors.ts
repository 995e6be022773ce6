// The client edge: the server's gRPC status errors become typed ZtwimErrors here, so the rest of
// the agent (sync, rotation, hints) never sees @connectrpc's ConnectError.
import { Code, ConnectError } from '@connectrpc/connect';
import { ZtwimError, type ErrorCode } from '@ztwim/core';
import { permissionDeniedReasonOf, PermissionDeniedDetails_Reason } from '@ztwim/proto';

const CODES: Partial<Record<Code, ErrorCode>> = {
  [Code.InvalidArgument]: 'ERR_INVALID_ARGUMENT',
  [Code.NotFound]: 'ERR_NOT_FOUND',
  [Code.AlreadyExists]: 'ERR_ALREADY_EXISTS',
  [Code.PermissionDenied]: 'ERR_PERMISSION_DENIED',
  [Code.ResourceExhausted]: 'ERR_RESOURCE_EXHAUSTED',
  [Code.FailedPrecondition]: 'ERR_FAILED_PRECONDITION',
  [Code.Unimplemented]: 'ERR_UNIMPLEMENTED',
  [Code.Internal]: 'ERR_INTERNAL',
  [Code.Unauthenticated]: 'ERR_UNAUTHENTICATED',
};

/** `agent_state` of a PermissionDenied that means the agent must stop (SPIRE's agent exits too). */
export type AgentState = 'banned' | 'not_attested';

/**
 * A ConnectError from a call to the server as a ZtwimError: its code mapped (deadlines, cancels
 * and transport failures are ERR_UNAVAILABLE), the gRPC code kept in `fields.grpc_code`, and a
 * PermissionDenied naming the agent banned or unknown marked with `fields.agent_state`. Anything
 * else is returned as it is.
 */
export function serverCallError(e: unknown): unknown {
  if (!(e instanceof ConnectError)) return e;
  const fields: Record<string, unknown> = { grpc_code: e.code, reason: e.rawMessage };
  const denied = permissionDeniedReasonOf(e);
  if (denied === PermissionDeniedDetails_Reason.AGENT_BANNED) {
    return new ZtwimError('ERR_PERMISSION_DENIED', 'agent is banned', { cause: e, fields: { ...fields, agent_state: 'banned' satisfies AgentState } });
  }
  if (denied === PermissionDeniedDetails_Reason.AGENT_NOT_ATTESTED) {
    return new ZtwimError('ERR_PERMISSION_DENIED', 'agent is no longer attested', {
      cause: e,
      fields: { ...fields, agent_state: 'not_attested' satisfies AgentState },
    });
  }
  return new ZtwimError(CODES[e.code] ?? 'ERR_UNAVAILABLE', statusText(e), { cause: e, fields });
}

/** `PermissionDenied: <the server's message>` of a server call's error (the message of any other). */
export function statusText(e: unknown): string {
  const status = e instanceof ZtwimError && e.cause instanceof ConnectError ? e.cause : e;
  if (status instanceof ConnectError) return `${Code[status.code] ?? status.code}: ${status.rawMessage}`;
  return e instanceof Error ? e.message : String(e);
}

/** Whether a translated error carries this gRPC code (e.g. DeadlineExceeded, folded into ERR_UNAVAILABLE). */
export function hasGrpcCode(e: unknown, code: Code): boolean {
  return e instanceof ZtwimError && e.fields['grpc_code'] === code;
}

async function* translatedStream<T>(it: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    // yield* hands an early return (a `break` in the caller) on to the call, which then cancels.
    yield* it;
  } catch (e) {
    throw serverCallError(e);
  }
}

/** A connect client whose unary calls reject, and whose streams throw, translated errors. */
export function translatingClient<T extends object>(client: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(client)) {
    if (typeof value !== 'function') {
      out[name] = value;
      continue;
    }
    const call = value as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]): unknown => {
      const r = call(...args);
      if (r instanceof Promise) {
        return r.catch((e: unknown) => {
          throw serverCallError(e);
        });
      }
      if (r !== null && typeof r === 'object' && Symbol.asyncIterator in r) return translatedStream(r as AsyncIterable<unknown>);
      return r;
    };
  }
  return out as T;
}
