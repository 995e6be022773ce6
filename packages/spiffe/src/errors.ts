/**
 * The SDK's error type. Every failure the SDK reports on outside input is a SpiffeError
 * with a stable `code`; callers branch on `code`, never on message text.
 */
export const SPIFFE_ERROR_CODES = [
  'ERR_SPIFFEID_INVALID',
  'ERR_TRUST_DOMAIN_INVALID',
  'ERR_BUNDLE_INVALID',
  'ERR_BUNDLE_NOT_FOUND',
  'ERR_PEM_INVALID',
  'ERR_X509_INVALID',
  'ERR_X509SVID_INVALID',
  'ERR_X509SVID_UNTRUSTED',
  'ERR_CSR_INVALID',
  'ERR_JWTSVID_INVALID',
  'ERR_JWTSVID_UNTRUSTED',
  'ERR_JWTSVID_EXPIRED',
  'ERR_JWTSVID_AUDIENCE',
  'ERR_KEY_INVALID',
  'ERR_WORKLOAD_ADDRESS_INVALID',
  'ERR_WORKLOAD_API',
  'ERR_AUTHORIZATION',
] as const;

export type SpiffeErrorCode = (typeof SPIFFE_ERROR_CODES)[number];

export interface SpiffeErrorOptions {
  readonly cause?: unknown;
}

export class SpiffeError extends Error {
  readonly code: SpiffeErrorCode;

  constructor(code: SpiffeErrorCode, message: string, options: SpiffeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }
}

export function isSpiffeError(e: unknown, code?: SpiffeErrorCode): e is SpiffeError {
  return e instanceof SpiffeError && (code === undefined || e.code === code);
}
