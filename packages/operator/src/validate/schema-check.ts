// Checks a CR's spec against its schema (kinds.ts) the way the API server's OpenAPI validation
// would, for CRs the API server did not check (built in code, stored before a rule existed,
// converted from the 0.2 shape). One problem per bad field, naming it; never throws.
import { patternRegExp, type Schema } from '../api/schema.ts';

export interface FieldProblem {
  /** The CR kind the field belongs to. */
  readonly kind: string;
  /** `spec.federation.federatesWith[0].trustDomain` */
  readonly field: string;
  readonly message: string;
  /** Condition reason: Invalid<Field>. */
  readonly reason: string;
}

/** Reasons that are not Invalid<PascalCase of the field> (ZTWIM's own names). */
const REASON_OVERRIDES: Record<string, string> = {
  jwtIssuer: 'InvalidJWTIssuerURL',
  federation: 'InvalidFederationConfiguration',
  caValidity: 'InvalidCAValidity',
  defaultX509Validity: 'InvalidDefaultX509Validity',
  defaultJWTValidity: 'InvalidDefaultJWTValidity',
  caKeyType: 'InvalidCAKeyType',
  jwtKeyType: 'InvalidJWTKeyType',
  csiDriverName: 'InvalidCSIDriverName',
  k8sPSATEnabled: 'InvalidNodeAttestor',
};

/** `spec.federation.federatesWith[0].trustDomain` → InvalidFederationConfiguration; `spec.trustDomain` → InvalidTrustDomain. */
export function reasonFor(field: string): string {
  const parts = field
    .replace(/\[\d+\]/g, '')
    .split('.')
    .filter((p) => p !== 'spec' && p !== '');
  // a field inside a block that has its own reason (federation) takes the block's
  for (const p of parts) {
    const o = REASON_OVERRIDES[p];
    if (o !== undefined && p === 'federation') return o;
  }
  const last = parts[parts.length - 1] ?? 'Spec';
  return REASON_OVERRIDES[last] ?? `Invalid${last.charAt(0).toUpperCase()}${last.slice(1)}`;
}

const show = (v: unknown): string => (typeof v === 'string' ? `"${v}"` : (JSON.stringify(v) ?? String(v)));

/** Every problem of `value` against `schema`, at path `at`. */
export function checkSchema(kind: string, schema: Schema, value: unknown, at: string): FieldProblem[] {
  const out: FieldProblem[] = [];
  const add = (field: string, message: string): void => {
    out.push({ kind, field, message: `${kind} ${field}: ${message}`, reason: reasonFor(field) });
  };
  const walk = (s: Schema, v: unknown, path: string): void => {
    switch (s.type) {
      case 'string': {
        if (typeof v !== 'string') return add(path, `must be a string, got ${show(v)}`);
        if (s.enum !== undefined && !(s.enum as readonly string[]).includes(v))
          return add(path, `must be one of ${s.enum.map((e) => `"${e}"`).join(', ')}, got ${show(v)}`);
        if (s.maxLength !== undefined && v.length > s.maxLength) return add(path, `must be at most ${s.maxLength} characters, got ${v.length}`);
        if (s.minLength !== undefined && v.length < s.minLength) return add(path, `must be at least ${s.minLength} characters`);
        if (s.pattern !== undefined && !patternRegExp(s.pattern).test(v)) return add(path, `${show(v)} does not match ${s.pattern}`);
        return;
      }
      case 'integer':
        if (typeof v !== 'number' || !Number.isInteger(v)) return add(path, `must be an integer, got ${show(v)}`);
        if (s.minimum !== undefined && v < s.minimum) return add(path, `must be at least ${s.minimum}, got ${v}`);
        if (s.maximum !== undefined && v > s.maximum) return add(path, `must be at most ${s.maximum}, got ${v}`);
        return;
      case 'object': {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) return add(path, `must be an object, got ${show(v)}`);
        const o = v as Record<string, unknown>;
        for (const [k, f] of Object.entries(s.fields)) {
          if (o[k] === undefined) {
            if (f.required === true) add(`${path}.${k}`, 'is required');
          } else walk(f, o[k], `${path}.${k}`);
        }
        for (const k of Object.keys(o)) if (!(k in s.fields)) add(`${path}.${k}`, 'is not a known field');
        return;
      }
      case 'array': {
        if (!Array.isArray(v)) return add(path, `must be a list, got ${show(v)}`);
        if (s.maxItems !== undefined && v.length > s.maxItems) return add(path, `must have at most ${s.maxItems} items, got ${v.length}`);
        if (s.minItems !== undefined && v.length < s.minItems) return add(path, `must have at least ${s.minItems} item(s)`);
        v.forEach((item, i) => walk(s.items, item, `${path}[${i}]`));
        if (s.listMapKeys !== undefined) {
          const seen = new Set<string>();
          v.forEach((item, i) => {
            const key = JSON.stringify(s.listMapKeys?.map((k) => (item as Record<string, unknown> | null)?.[k]));
            if (seen.has(key)) add(`${path}[${i}]`, `duplicate ${s.listMapKeys?.join('/')} ${key}`);
            seen.add(key);
          });
        }
        return;
      }
      case 'map': {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) return add(path, `must be a map of strings, got ${show(v)}`);
        const entries = Object.entries(v as Record<string, unknown>);
        if (s.maxProperties !== undefined && entries.length > s.maxProperties)
          return add(path, `must have at most ${s.maxProperties} entries, got ${entries.length}`);
        for (const [k, x] of entries) if (typeof x !== 'string') add(`${path}.${k}`, `must be a string, got ${show(x)}`);
        return;
      }
      case 'raw':
        if (typeof v !== 'object' || v === null || Array.isArray(v)) add(path, `must be an object, got ${show(v)}`);
        return;
    }
  };
  walk(schema, value, at);
  return out;
}
