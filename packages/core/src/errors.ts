/**
 * Typed errors shared by server, agent and OIDC provider. Codes are stable string literals;
 * each maps to one gRPC status code at the API boundary (see grpcCodeOf).
 */
import { isSpiffeError } from '@ztwim/spiffe';

export const ERROR_CODES = {
  ERR_INVALID_ARGUMENT: 3,
  ERR_NOT_FOUND: 5,
  ERR_ALREADY_EXISTS: 6,
  ERR_PERMISSION_DENIED: 7,
  ERR_RESOURCE_EXHAUSTED: 8,
  ERR_FAILED_PRECONDITION: 9,
  /** A write lost a race (Kubernetes 409 Conflict: stale resourceVersion): read again and retry. */
  ERR_CONFLICT: 10,
  /** What was asked for no longer exists in that form (Kubernetes 410 Gone: expired resourceVersion). */
  ERR_GONE: 11,
  ERR_UNIMPLEMENTED: 12,
  ERR_INTERNAL: 13,
  ERR_UNAVAILABLE: 14,
  ERR_UNAUTHENTICATED: 16,
  ERR_CONFIG: 3,
  ERR_DATASTORE: 13,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ZtwimErrorOptions {
  readonly cause?: unknown;
  /** Extra structured fields for logs (never sent to clients). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export class ZtwimError extends Error {
  readonly code: ErrorCode;
  readonly fields: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: ZtwimErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.fields = options.fields ?? {};
    this.name = new.target.name;
  }
}

export function isZtwimError(e: unknown, code?: ErrorCode): e is ZtwimError {
  return e instanceof ZtwimError && (code === undefined || e.code === code);
}

/** The gRPC status code for an error code. */
export function grpcCodeOf(code: ErrorCode): number {
  return ERROR_CODES[code];
}

/**
 * The one mapping from our typed errors to gRPC codes at an API boundary (a GrpcCodeResolver for
 * @ztwim/proto's errorMappingInterceptor): ZtwimErrors carry their code, SDK validation errors
 * are InvalidArgument, anything else is not ours (undefined: Internal).
 */
/**
 * The system error code (`ENOENT`, `EADDRINUSE`, ...) of an error or of one of its causes (up to 5
 * deep), if it has one.
 */
export function errnoOf(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur !== null && typeof cur === 'object' && depth < 5; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('E')) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A caught value as an Error: itself when it is one, else an internal ZtwimError carrying its text
 * (and the value as cause), so every rejection and callback gets an Error.
 */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new ZtwimError('ERR_INTERNAL', String(e), { cause: e });
}

export function grpcCodeOfError(err: unknown): number | undefined {
  if (isZtwimError(err)) return grpcCodeOf(err.code);
  if (isSpiffeError(err)) return 3;
  return undefined;
}

export const invalidArgument = (msg: string, opts?: ZtwimErrorOptions): ZtwimError => new ZtwimError('ERR_INVALID_ARGUMENT', msg, opts);
export const notFound = (msg: string, opts?: ZtwimErrorOptions): ZtwimError => new ZtwimError('ERR_NOT_FOUND', msg, opts);
export const alreadyExists = (msg: string, opts?: ZtwimErrorOptions): ZtwimError => new ZtwimError('ERR_ALREADY_EXISTS', msg, opts);
export const permissionDenied = (msg: string, opts?: ZtwimErrorOptions): ZtwimError => new ZtwimError('ERR_PERMISSION_DENIED', msg, opts);
export const failedPrecondition = (msg: string, opts?: ZtwimErrorOptions): ZtwimError => new ZtwimError('ERR_FAILED_PRECONDITION', msg, opts);
export const internal = (msg: string, opts?: ZtwimErrorOptions): ZtwimError => new ZtwimError('ERR_INTERNAL', msg, opts);
export const unavailable = (msg: string, opts?: ZtwimErrorOptions): ZtwimError => new ZtwimError('ERR_UNAVAILABLE', msg, opts);
export const configError = (msg: string, opts?: ZtwimErrorOptions): ZtwimError => new ZtwimError('ERR_CONFIG', msg, opts);
