// A small schema DSL for the operator's CRDs: one typed description per field from which come the
// TypeScript types (Infer<>), the CRDs' OpenAPI v3 schemas (crd.ts) and the field checks the
// operator runs on objects the API server stored before a rule existed (validate/). Written here
// rather than taken from a library: the libraries that infer types from schemas (zod, typebox)
// know nothing of Kubernetes' structural-schema extensions (x-kubernetes-validations with
// transition rules, preserve-unknown-fields, list types), which are most of what we need.

/** A CEL rule on a field (`x-kubernetes-validations`). `transition`: uses oldSelf. */
export interface CelRule {
  readonly rule: string;
  readonly message: string;
  /** Machine-readable reason the API server reports (FieldValueInvalid by default). */
  readonly reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  /** The field path the API server names in its error, relative to this field. */
  readonly fieldPath?: string;
}

interface Common {
  readonly description: string;
  readonly required?: boolean;
  /** `self == oldSelf` (the field cannot change once set). */
  readonly immutable?: boolean;
  readonly cel?: readonly CelRule[];
  /** Field kept only to accept the 0.2 shape; normalize() maps it to its 1.0 place. */
  readonly deprecated?: string;
}

export interface StringSchema<T extends string = string> extends Common {
  readonly type: 'string';
  readonly enum?: readonly T[];
  /** RE2 syntax (what the API server runs); a leading (?i) is case-insensitive. */
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly default?: T;
  /** Known in the validate step: 'duration' is a Go duration ("24h", "90m", "300s"). */
  readonly format?: 'duration';
}

export interface IntegerSchema extends Common {
  readonly type: 'integer';
  readonly minimum?: number;
  readonly maximum?: number;
  readonly default?: number;
}

export interface ObjectSchema<F extends Fields = Fields> extends Common {
  readonly type: 'object';
  readonly fields: F;
  /** `default: {}`: the API server then applies the defaults of its fields when it is absent. */
  readonly defaultEmpty?: boolean;
}

export interface ArraySchema<I extends Schema = Schema> extends Common {
  readonly type: 'array';
  readonly items: I;
  readonly minItems?: number;
  readonly maxItems?: number;
  /** `x-kubernetes-list-type: map` keyed by these item fields. */
  readonly listMapKeys?: readonly string[];
}

/** String → string map (labels, nodeSelector). */
export interface MapSchema extends Common {
  readonly type: 'map';
  readonly maxProperties?: number;
}

/** A Kubernetes core type kept as is (affinity, resources, a toleration): preserve-unknown-fields. */
export interface RawSchema extends Common {
  readonly type: 'raw';
}

export type Schema = StringSchema | IntegerSchema | ObjectSchema | ArraySchema | MapSchema | RawSchema;
export type Fields = { readonly [k: string]: Schema };

// ---- builders ----

type Opts<S> = Omit<S, 'type' | 'fields' | 'items' | 'enum'>;

export const str = <const O extends Opts<StringSchema>>(o: O): StringSchema & O & { type: 'string' } => ({ type: 'string', ...o });
export const oneOf = <const T extends string, const O extends Opts<StringSchema<T>>>(
  values: readonly T[],
  o: O,
): StringSchema<T> & O & { type: 'string'; enum: readonly T[] } => ({
  type: 'string',
  enum: values,
  ...o,
});
/** The operator's string toggles: "true" / "false". */
export const toggle = <const D extends 'true' | 'false', const O extends Opts<StringSchema<'true' | 'false'>>>(dflt: D, o: O) =>
  oneOf(['true', 'false'] as const, { default: dflt, ...o });
export const int = <const O extends Opts<IntegerSchema>>(o: O): IntegerSchema & O & { type: 'integer' } => ({ type: 'integer', ...o });
export const obj = <const F extends Fields, const O extends Opts<ObjectSchema>>(fields: F, o: O): ObjectSchema<F> & O & { type: 'object' } => ({
  type: 'object',
  fields,
  ...o,
});
export const arr = <const I extends Schema, const O extends Opts<ArraySchema>>(items: I, o: O): ArraySchema<I> & O & { type: 'array' } => ({
  type: 'array',
  items,
  ...o,
});
export const map = <const O extends Opts<MapSchema>>(o: O): MapSchema & O & { type: 'map' } => ({ type: 'map', ...o });
export const raw = <const O extends Opts<RawSchema>>(o: O): RawSchema & O & { type: 'raw' } => ({ type: 'raw', ...o });

// ---- type inference: what a user may write ----

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type RequiredKeys<F> = { [K in keyof F]: F[K] extends { required: true } ? K : never }[keyof F];
type OptionalKeys<F> = Exclude<keyof F, RequiredKeys<F>>;

/** The TypeScript type of a value that fits the schema, as written in a CR (defaults not applied). */
export type Infer<S> = S extends { type: 'string'; enum: readonly (infer E)[] }
  ? E
  : S extends { type: 'string' }
    ? string
    : S extends { type: 'integer' }
      ? number
      : S extends { type: 'object'; fields: infer F }
        ? Simplify<{ [K in RequiredKeys<F>]: Infer<F[K]> } & { [K in OptionalKeys<F>]?: Infer<F[K]> }>
        : S extends { type: 'array'; items: infer I }
          ? Array<Infer<I>>
          : S extends { type: 'map' }
            ? Record<string, string>
            : S extends { type: 'raw' }
              ? Record<string, unknown>
              : never;

/** A case-insensitive RE2 pattern `(?i)...` as a JS RegExp. */
export function patternRegExp(pattern: string): RegExp {
  return pattern.startsWith('(?i)')
    ? new RegExp(pattern.slice(4), 'i')
    : pattern.startsWith('^(?i)')
      ? new RegExp('^' + pattern.slice(5), 'i')
      : new RegExp(pattern);
}

// ---- type inference: the value once defaults are applied (normalize.ts) ----

type ResolvedKeys<F> = { [K in keyof F]: F[K] extends { required: true } | { default: unknown } | { defaultEmpty: true } ? K : never }[keyof F];

/** As Infer, with every field that has a default (or is required) present. */
export type Resolved<S> = S extends { type: 'object'; fields: infer F }
  ? Simplify<{ [K in ResolvedKeys<F>]: Resolved<F[K]> } & { [K in Exclude<keyof F, ResolvedKeys<F>>]?: Resolved<F[K]> }>
  : S extends { type: 'array'; items: infer I }
    ? Array<Resolved<I>>
    : Infer<S>;

/**
 * The API server's defaulting, for values it has not defaulted (a CR built in code, a 0.2 CR
 * converted): fills each absent field that has a default, recursing into present objects and
 * into absent ones marked defaultEmpty. Returns a new value; the input is not changed.
 */
export function applyDefaults(s: Schema, value: unknown): unknown {
  if (s.type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const src = value as Record<string, unknown>;
    const out: Record<string, unknown> = { ...src };
    for (const [k, f] of Object.entries(s.fields)) {
      const v = src[k];
      if (v === undefined) {
        if ((f.type === 'string' || f.type === 'integer') && f.default !== undefined) out[k] = f.default;
        else if (f.type === 'object' && f.defaultEmpty === true) out[k] = applyDefaults(f, {});
      } else out[k] = applyDefaults(f, v);
    }
    return out;
  }
  if (s.type === 'array' && Array.isArray(value)) return value.map((v) => applyDefaults(s.items, v));
  return value;
}
