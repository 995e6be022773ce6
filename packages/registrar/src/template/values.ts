/**
 * The Go values a template sees. Go's text/template works on typed Go values (structs with fixed
 * field sets, maps with a zero value for absent keys, nil pointers), and the SPIRE controller
 * manager's templates depend on those semantics (`.PodMeta.Labels.app` is a map lookup,
 * `.PodMeta.Nmae` is an error, `index .PodMeta.Labels "x"` of an absent key is ""), so the
 * evaluator works on this small model instead of plain JSON.
 */

/** Go's invalid reflect.Value: a missing map key read with a field (`.Labels.absent`). Prints `<no value>`. */
export const NO_VALUE: unique symbol = Symbol('no value');
export type NoValue = typeof NO_VALUE;

/** A Go float64 (template literals like `1.5`); plain JS numbers are Go ints. */
export class GoFloat {
  readonly value: number;

  constructor(value: number) {
    this.value = value;
  }
}

/** A Go map with string keys; reading an absent key with `index` gives `zero`. */
export class GoMap {
  readonly entries: ReadonlyMap<string, GoValue>;
  readonly typeName: string;
  readonly zero: GoValue;

  constructor(entries: ReadonlyMap<string, GoValue>, typeName = 'map[string]string', zero: GoValue = '') {
    this.entries = entries;
    this.typeName = typeName;
    this.zero = zero;
  }
}

/** A Go struct: a fixed set of fields; reading any other field is an error naming the type. */
export class GoStruct {
  readonly typeName: string;
  readonly fields: ReadonlyMap<string, GoValue>;

  constructor(typeName: string, fields: ReadonlyMap<string, GoValue>) {
    this.typeName = typeName;
    this.fields = fields;
  }
}

/** `null` is a nil pointer (or nil interface). Arrays are Go slices. */
export type GoValue = string | number | boolean | null | GoFloat | GoMap | GoStruct | readonly GoValue[] | NoValue;

/** A struct from a record: `goStruct('templateData', { TrustDomain: 'example.org', ... })`. */
export function goStruct(typeName: string, fields: Readonly<Record<string, GoValue>>): GoStruct {
  return new GoStruct(typeName, new Map(Object.entries(fields)));
}

/** A map[string]string from a record (labels, annotations). */
export function goStringMap(entries: Readonly<Record<string, string>> | undefined): GoMap {
  return new GoMap(new Map(Object.entries(entries ?? {})));
}

export function isGoSlice(v: GoValue): v is readonly GoValue[] {
  return Array.isArray(v);
}

/** Go's name for a value's type, as fmt prints it in `%!d(string=x)`. */
export function goTypeName(v: GoValue): string {
  if (v === NO_VALUE || v === null) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'int';
  if (typeof v === 'boolean') return 'bool';
  if (v instanceof GoFloat) return 'float64';
  if (v instanceof GoMap) return v.typeName;
  if (v instanceof GoStruct) return v.typeName;
  return v.every((e) => typeof e === 'string') ? '[]string' : '[]interface {}';
}

/** Go's truth: false, 0, nil, and empty strings, slices and maps are false; structs are true. */
export function isTrue(v: GoValue): boolean {
  if (v === NO_VALUE || v === null) return false;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'boolean') return v;
  if (v instanceof GoFloat) return v.value !== 0;
  if (v instanceof GoMap) return v.entries.size > 0;
  if (v instanceof GoStruct) return true;
  return v.length > 0;
}

/** strconv.FormatFloat(v, 'g', -1, 64): shortest digits, exponent form below 1e-4 and from 1e21. */
export function formatGoFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= 21) {
    const [mant, e] = x.toExponential().split('e') as [string, string];
    const sign = e.startsWith('-') ? '-' : '+';
    const digits = e.replace(/^[+-]/, '').padStart(2, '0');
    return `${mant}e${sign}${digits}`;
  }
  return String(x);
}

/** fmt.Sprint of one value (what `{{ pipeline }}` writes). */
export function printGoValue(v: GoValue): string {
  if (v === NO_VALUE) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(Math.trunc(v));
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof GoFloat) return formatGoFloat(v.value);
  if (v instanceof GoMap) {
    const keys = [...v.entries.keys()].sort();
    return `map[${keys.map((k) => `${k}:${printGoValue(v.entries.get(k) ?? null)}`).join(' ')}]`;
  }
  if (v instanceof GoStruct) return `{${[...v.fields.values()].map(printGoValue).join(' ')}}`;
  return `[${v.map(printGoValue).join(' ')}]`;
}
