// The apiserver's failures as @ztwim/core errors with stable codes. The apiserver answers a failed
// call with a v1 Status (reason, code, message, details.causes); the code is chosen from the
// reason when there is one (409 is either Conflict or AlreadyExists), else from the HTTP status.
import { errnoOf, ZtwimError, type ErrorCode } from '@ztwim/core';

/** A metav1.Status as the apiserver sends it with an error (and in a watch's ERROR event). */
export interface KubeStatus {
  readonly kind?: 'Status';
  readonly apiVersion?: string;
  readonly status?: 'Success' | 'Failure';
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: {
    readonly name?: string;
    readonly group?: string;
    readonly kind?: string;
    readonly causes?: ReadonlyArray<{ readonly reason?: string; readonly message?: string; readonly field?: string }>;
  };
}

/** The error of a call the apiserver refused (or could not be reached for). */
export class KubeApiError extends ZtwimError {
  /** HTTP status (0 when no answer came). */
  readonly httpStatus: number;
  /** The Status reason (`NotFound`, `Conflict`, `AlreadyExists`, `Expired`, `Gone`, `Invalid`, ...), '' if none. */
  readonly reason: string;
  constructor(code: ErrorCode, message: string, httpStatus: number, reason: string, options: { cause?: unknown; fields?: Record<string, unknown> } = {}) {
    super(code, message, {
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      fields: { ...options.fields, http_status: httpStatus, k8s_reason: reason },
    });
    this.httpStatus = httpStatus;
    this.reason = reason;
  }
}

const BY_REASON: Readonly<Record<string, ErrorCode>> = {
  NotFound: 'ERR_NOT_FOUND',
  AlreadyExists: 'ERR_ALREADY_EXISTS',
  Conflict: 'ERR_CONFLICT',
  Gone: 'ERR_GONE',
  Expired: 'ERR_GONE',
  Forbidden: 'ERR_PERMISSION_DENIED',
  Unauthorized: 'ERR_UNAUTHENTICATED',
  Invalid: 'ERR_INVALID_ARGUMENT',
  BadRequest: 'ERR_INVALID_ARGUMENT',
  MethodNotAllowed: 'ERR_INVALID_ARGUMENT',
  UnsupportedMediaType: 'ERR_INVALID_ARGUMENT',
  RequestEntityTooLarge: 'ERR_INVALID_ARGUMENT',
  ServerTimeout: 'ERR_UNAVAILABLE',
  Timeout: 'ERR_UNAVAILABLE',
  TooManyRequests: 'ERR_UNAVAILABLE',
  ServiceUnavailable: 'ERR_UNAVAILABLE',
  InternalError: 'ERR_UNAVAILABLE',
};

/** HTTP status → code, when the body names no known reason. */
export function codeOfStatus(status: number): ErrorCode {
  if (status === 404) return 'ERR_NOT_FOUND';
  if (status === 409) return 'ERR_CONFLICT';
  if (status === 410) return 'ERR_GONE';
  if (status === 401) return 'ERR_UNAUTHENTICATED';
  if (status === 403) return 'ERR_PERMISSION_DENIED';
  if (status === 400 || status === 405 || status === 413 || status === 415 || status === 422) return 'ERR_INVALID_ARGUMENT';
  if (status === 429 || status >= 500) return 'ERR_UNAVAILABLE';
  return 'ERR_INTERNAL';
}

/** The Status object of an error body, if it is one. */
export function parseStatus(text: string): KubeStatus | undefined {
  try {
    const b = JSON.parse(text) as unknown;
    if (typeof b === 'object' && b !== null && ((b as KubeStatus).kind === 'Status' || typeof (b as KubeStatus).message === 'string')) return b as KubeStatus;
  } catch {
    // not JSON: the caller uses the text
  }
  return undefined;
}

/** The message of a Status with its causes (422 Invalid lists each rejected field). */
export function statusText(s: KubeStatus): string {
  const causes = (s.details?.causes ?? [])
    .map((c) => [c.field, c.message ?? c.reason].filter((x) => x !== undefined && x !== '').join(': '))
    .filter((c) => c !== '');
  const base = s.message ?? s.reason ?? `HTTP ${s.code ?? '?'}`;
  // The apiserver's message usually already lists the causes; add the ones it left out.
  const missing = causes.filter((c) => !base.includes(c));
  return missing.length === 0 ? base : `${base} (${missing.join('; ')})`;
}

/** The error of an answer outside 2xx. */
export function apiError(description: string, what: string, status: number, text: string): KubeApiError {
  const s = parseStatus(text);
  const reason = s?.reason ?? '';
  const code = BY_REASON[reason] ?? codeOfStatus(status);
  const msg = s !== undefined ? statusText(s) : text.trim() !== '' ? text.trim().slice(0, 300) : status === 401 ? 'Unauthorized' : `HTTP ${status}`;
  return new KubeApiError(code, `k8s ${description}: ${what}: ${status} ${msg}`, status, reason, { fields: { k8s_call: what } });
}

/** The error of a watch's ERROR event (its object is a Status). */
export function watchStatusError(description: string, what: string, s: KubeStatus): KubeApiError {
  const status = s.code ?? 500;
  const reason = s.reason ?? '';
  return new KubeApiError(BY_REASON[reason] ?? codeOfStatus(status), `k8s ${description}: ${what}: ${status} ${statusText(s)}`, status, reason, {
    fields: { k8s_call: what },
  });
}

/** A call that got no HTTP answer (refused, reset, timed out, TLS failure): unavailable, naming the call. */
export function transportError(description: string, what: string, e: unknown): KubeApiError {
  const sys = errnoOf(e);
  const m = (e as Error | undefined)?.message ?? String(e);
  return new KubeApiError('ERR_UNAVAILABLE', `k8s ${description}: ${what}: ${sys === undefined ? m : `${sys}: ${m}`}`, 0, '', {
    cause: e,
    fields: { k8s_call: what },
  });
}

/** True for the errors a retry may cure (apiserver away or overloaded). */
export function isRetryable(e: unknown): boolean {
  return e instanceof ZtwimError && e.code === 'ERR_UNAVAILABLE';
}
