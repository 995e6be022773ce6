/**
 * Go text/template's predefined functions (text/template/funcs.go). `and`/`or` are evaluated
 * lazily by the executor; `call` has nothing to call here (template data holds no functions).
 */
import { goSprint, goSprintf, goSprintln } from './printf.ts';
import { GoFloat, GoMap, GoStruct, NO_VALUE, goTypeName, isTrue, type GoValue } from './values.ts';

/** Thrown by a function; the executor adds the position and template text. */
export class FunctionError extends Error {}

export const BUILTIN_FUNCTIONS: ReadonlySet<string> = new Set([
  'and',
  'call',
  'html',
  'index',
  'js',
  'len',
  'not',
  'or',
  'print',
  'printf',
  'println',
  'slice',
  'urlquery',
  'eq',
  'ge',
  'gt',
  'le',
  'lt',
  'ne',
]);

type Fn = (args: readonly GoValue[]) => GoValue;

function arity(name: string, args: readonly GoValue[], min: number, max = min): void {
  if (args.length < min || args.length > max) {
    throw new FunctionError(`wrong number of args for ${name}: want ${min === max ? min : `at least ${min}`} got ${args.length}`);
  }
}

function intArg(name: string, v: GoValue): number {
  if (typeof v !== 'number') throw new FunctionError(`${name}: cannot index slice/array with type ${goTypeName(v)}`);
  return v;
}

function indexOne(item: GoValue, key: GoValue): GoValue {
  if (item === NO_VALUE || item === null) throw new FunctionError('index of untyped nil');
  if (item instanceof GoMap) {
    if (typeof key !== 'string') throw new FunctionError(`value has type ${goTypeName(key)}; should be string`);
    return item.entries.has(key) ? (item.entries.get(key) as GoValue) : item.zero;
  }
  if (Array.isArray(item) || typeof item === 'string') {
    const i = intArg('index', key);
    const len = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
    if (i < 0 || i >= len) throw new FunctionError(`error calling index: index out of range: ${i}`);
    return typeof item === 'string' ? (Buffer.from(item)[i] as number) : ((item as readonly GoValue[])[i] as GoValue);
  }
  throw new FunctionError(`can't index item of type ${goTypeName(item)}`);
}

type Basic = { kind: 'string' | 'int' | 'float' | 'bool' | 'nil'; v: string | number | boolean | null };

function basic(v: GoValue): Basic {
  if (v === NO_VALUE) throw new FunctionError('invalid type for comparison');
  if (v === null) return { kind: 'nil', v: null };
  if (typeof v === 'string') return { kind: 'string', v };
  if (typeof v === 'number') return { kind: 'int', v };
  if (typeof v === 'boolean') return { kind: 'bool', v };
  if (v instanceof GoFloat) return { kind: 'float', v: v.value };
  throw new FunctionError(`non-comparable type ${goTypeName(v)}`);
}

/** Go's basicKind classes for eq: the basic kinds, and 'other' for the rest (invalid value included). */
function eqKind(v: GoValue): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return typeof v;
  if (v instanceof GoFloat) return 'float';
  return 'other';
}

/** Go's isNil for eq: the invalid value, nil pointers, nil maps, and (JSON-omitted) empty slices. */
function isNilish(v: GoValue): boolean {
  return v === NO_VALUE || v === null || (v instanceof GoMap && v.isNil) || (Array.isArray(v) && v.length === 0);
}

/**
 * Go's eq (text/template funcs.go): different basic kinds are an error when both sides are valid
 * (unequal otherwise); non-basic values compare by nil-ness, structs by their basic fields, and
 * anything else is non-comparable.
 */
function eqOne(a: GoValue, b: GoValue): boolean {
  const ka = eqKind(a);
  const kb = eqKind(b);
  if (ka !== kb) {
    if (a !== NO_VALUE && b !== NO_VALUE) throw new FunctionError('incompatible types for comparison');
    return false;
  }
  if (ka === 'float') return (a as GoFloat).value === (b as GoFloat).value;
  if (ka !== 'other') return a === b;
  // reflect kinds must match unless one side is the invalid value (canCompare in funcs.go).
  const kindOf = (v: GoValue): string =>
    v === NO_VALUE ? 'invalid' : v === null ? 'ptr' : v instanceof GoMap ? 'map' : v instanceof GoStruct ? 'struct' : 'slice';
  if (kindOf(a) !== kindOf(b) && a !== NO_VALUE && b !== NO_VALUE) {
    throw new FunctionError(`non-comparable types ${goTypeName(a)}, ${goTypeName(b)}`);
  }
  if (isNilish(a) || isNilish(b)) return isNilish(a) === isNilish(b);
  if (a instanceof GoStruct && b instanceof GoStruct && a.typeName === b.typeName) {
    return [...a.fields.entries()].every(([k, v]) => {
      const w = b.fields.get(k) as GoValue;
      if (eqKind(v) === 'other' && !isNilish(v)) throw new FunctionError(`non-comparable type ${a.typeName}`);
      return eqOne(v, w);
    });
  }
  throw new FunctionError(`non-comparable type ${goTypeName(a)}`);
}

function eq(args: readonly GoValue[]): boolean {
  if (args.length < 2) throw new FunctionError('missing argument for comparison');
  const a = args[0] as GoValue;
  return args.slice(1).some((x) => eqOne(a, x));
}

function less(args: readonly GoValue[]): boolean {
  arity('lt', args, 2);
  const a = basic(args[0] as GoValue);
  const b = basic(args[1] as GoValue);
  if (a.kind === 'bool' || a.kind === 'nil' || b.kind === 'bool' || b.kind === 'nil') throw new FunctionError('invalid type for comparison');
  if (a.kind !== b.kind) throw new FunctionError('incompatible types for comparison');
  return (a.v as string | number) < (b.v as string | number);
}

/** html/js/urlquery's evalArgs: one string as is, else fmt.Sprint; a missing value prints `<no value>`. */
function printArgs(args: readonly GoValue[]): string {
  if (args.length === 1 && typeof args[0] === 'string') return args[0];
  return args
    .map((a) => (a === NO_VALUE ? '<no value>' : goSprint([a])))
    .reduce((acc, s, i) => {
      const prev = args[i - 1];
      const cur = args[i] as GoValue;
      const isStr = (v: GoValue | undefined): boolean => typeof v === 'string' || v === NO_VALUE;
      return i > 0 && !isStr(cur) && !isStr(prev) ? `${acc} ${s}` : acc + s;
    }, '');
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '"': '&#34;', "'": '&#39;', '&': '&amp;', '<': '&lt;', '>': '&gt;', '\0': '\uFFFD' };

function jsEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '\\' || ch === "'" || ch === '"') out += `\\${ch}`;
    else if (ch === '<' || ch === '>' || ch === '&' || ch === '=' || cp < 0x20 || !/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) {
      out += cp < 0x10000 ? `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}` : ch;
    } else out += ch;
  }
  return out;
}

function sliceFn(args: readonly GoValue[]): GoValue {
  const [item, ...idx] = args;
  if (item === undefined) throw new FunctionError('wrong number of args for slice: want at least 1 got 0');
  if (typeof item !== 'string' && !Array.isArray(item)) throw new FunctionError(`can't slice item of type ${goTypeName(item)}`);
  if (idx.length > (typeof item === 'string' ? 2 : 3)) throw new FunctionError(`too many slice indexes: ${idx.length}`);
  const len = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
  const lo = idx[0] === undefined ? 0 : intArg('slice', idx[0]);
  const hi = idx[1] === undefined ? len : intArg('slice', idx[1]);
  if (lo < 0 || hi < lo || hi > len) throw new FunctionError(`invalid slice index: ${lo} > ${hi}`);
  return typeof item === 'string' ? Buffer.from(item).subarray(lo, hi).toString('utf8') : (item as readonly GoValue[]).slice(lo, hi);
}

export const FUNCTIONS: ReadonlyMap<string, Fn> = new Map<string, Fn>([
  [
    'call',
    () => {
      throw new FunctionError('call: template data holds no functions');
    },
  ],
  ['html', (a) => printArgs(a).replace(/["'&<>\0]/g, (c) => HTML_ESCAPES[c] ?? c)],
  ['js', (a) => jsEscape(printArgs(a))],
  [
    'urlquery',
    (a) =>
      encodeURIComponent(printArgs(a))
        .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
        .replace(/%20/g, '+'),
  ],
  [
    'index',
    (a) => {
      if (a.length < 1) throw new FunctionError('wrong number of args for index: want at least 1 got 0');
      return a.slice(1).reduce<GoValue>((item, key) => indexOne(item, key), a[0] as GoValue);
    },
  ],
  ['slice', sliceFn],
  [
    'len',
    (a) => {
      arity('len', a, 1);
      const v = a[0] as GoValue;
      if (typeof v === 'string') return Buffer.byteLength(v);
      if (Array.isArray(v)) return v.length;
      if (v instanceof GoMap) return v.entries.size;
      throw new FunctionError(`len of type ${v === null || v === NO_VALUE ? '<nil>' : goTypeName(v)}`);
    },
  ],
  [
    'not',
    (a) => {
      arity('not', a, 1);
      return !isTrue(a[0] as GoValue);
    },
  ],
  ['print', (a) => goSprint(a)],
  ['println', (a) => goSprintln(a)],
  [
    'printf',
    (a) => {
      const [format, ...rest] = a;
      if (format === undefined) throw new FunctionError('wrong number of args for printf: want at least 1 got 0');
      if (typeof format !== 'string') throw new FunctionError(`wrong type for value; expected string; got ${goTypeName(format)}`);
      return goSprintf(format, rest);
    },
  ],
  ['eq', (a) => eq(a)],
  [
    'ne',
    (a) => {
      arity('ne', a, 2);
      return !eq(a);
    },
  ],
  ['lt', (a) => less(a)],
  ['le', (a) => less(a) || eq(a)],
  ['gt', (a) => !(less(a) || eq(a))],
  ['ge', (a) => !less(a)],
]);
