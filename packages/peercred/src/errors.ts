/** Error codes of @ztwim/peercred (the package depends on nothing, so it carries its own error type). */
export const PEERCRED_ERROR_CODES = [
  /** Not Linux: SO_PEERCRED is not available. */
  'ERR_PEERCRED_UNSUPPORTED',
  /** The native addon is missing (not built) or failed to load. */
  'ERR_PEERCRED_ADDON',
  /** The socket has no file descriptor (destroyed, not yet connected, or not a Unix socket). */
  'ERR_PEERCRED_NO_FD',
  /** The kernel refused getsockopt; `errno` names the reason. */
  'ERR_PEERCRED_SYSCALL',
] as const;

export type PeerCredErrorCode = (typeof PEERCRED_ERROR_CODES)[number];

export interface PeerCredErrorOptions {
  readonly cause?: unknown;
  /** errno name from the kernel (e.g. `EBADF`), for ERR_PEERCRED_SYSCALL. */
  readonly errno?: string;
}

export class PeerCredError extends Error {
  readonly code: PeerCredErrorCode;
  readonly errno: string | undefined;

  constructor(code: PeerCredErrorCode, message: string, options: PeerCredErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.errno = options.errno;
    this.name = new.target.name;
  }
}

export function isPeerCredError(e: unknown, code?: PeerCredErrorCode): e is PeerCredError {
  return e instanceof PeerCredError && (code === undefined || e.code === code);
}
