/**
 * Typed errors of the registrar's parsers. Codes are stable strings; `field` names the path of the
 * offending value in a custom resource (`spec.podSelector.matchExpressions[0].operator`) when
 * there is one. The webhook turns them into admission denials, the reconciler into status counts.
 */
export const REGISTRAR_ERROR_CODES = ['template_parse', 'template_render', 'label_selector', 'crd_invalid'] as const;
export type RegistrarErrorCode = (typeof REGISTRAR_ERROR_CODES)[number];

export class RegistrarError extends Error {
  readonly code: RegistrarErrorCode;
  /** Path of the offending field in the object, when the error is about one. */
  readonly field: string | undefined;

  constructor(code: RegistrarErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
    this.name = 'RegistrarError';
  }
}

export function isRegistrarError(e: unknown, code?: RegistrarErrorCode): e is RegistrarError {
  return e instanceof RegistrarError && (code === undefined || e.code === code);
}
