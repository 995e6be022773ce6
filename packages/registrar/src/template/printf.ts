/**
 * The part of Go's fmt that templates reach through `printf`, `print` and `println`: verbs
 * %v %s %d %q %c %x %X %t %f %e %g %%, flags `-` `0` `+`, width and precision, and fmt's in-band
 * errors (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=1)`), which Go writes into the output
 * instead of failing (a SPIFFE ID holding them then fails to parse, as in SPIRE).
 */
import { GoFloat, GoMap, NO_VALUE, formatGoFloat, goTypeName, printGoValue, type GoValue } from './values.ts';

interface Spec {
  minus: boolean;
  zero: boolean;
  plus: boolean;
  width: number | undefined;
  precision: number | undefined;
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** strconv.Quote: double-quoted Go string literal with Go's escapes. */
export function goQuote(s: string, quote = '"'): string {
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (PRINTABLE.test(ch)) out += ch;
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\v') out += '\\v';
    else if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return out + quote;
}

function badVerb(verb: string, v: GoValue): string {
  if (v === null || v === NO_VALUE) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(v)}=${printGoValue(v)})`;
}

function pad(s: string, spec: Spec, numeric: boolean): string {
  if (spec.width === undefined || s.length >= spec.width) return s;
  if (spec.minus) return s.padEnd(spec.width, ' ');
  if (spec.zero && numeric) {
    const sign = /^[+-]/.test(s) ? (s[0] as string) : '';
    return sign + s.slice(sign.length).padStart(spec.width - sign.length, '0');
  }
  return s.padStart(spec.width, ' ');
}

function hexOfString(s: string, upper: boolean): string {
  const h = Buffer.from(s, 'utf8').toString('hex');
  return upper ? h.toUpperCase() : h;
}

function formatFloat(x: number, verb: string, spec: Spec): string {
  if (verb === 'f') return x.toFixed(spec.precision ?? 6);
  if (verb === 'e') {
    const [m, e] = x.toExponential(spec.precision ?? 6).split('e') as [string, string];
    return `${m}e${e.startsWith('-') ? '-' : '+'}${e.replace(/^[+-]/, '').padStart(2, '0')}`;
  }
  return spec.precision === undefined ? formatGoFloat(x) : String(Number(x.toPrecision(spec.precision)));
}

/** One operand under one verb; slices and maps apply the verb to their elements, as fmt does. */
function formatOne(verb: string, v: GoValue, spec: Spec): string {
  if (Array.isArray(v) && verb !== 'v') return `[${(v as readonly GoValue[]).map((e) => formatOne(verb, e, { ...spec, width: undefined })).join(' ')}]`;
  if (v instanceof GoMap && verb !== 'v') {
    const keys = [...v.entries.keys()].sort();
    return `map[${keys.map((k) => `${formatOne(verb, k, spec)}:${formatOne(verb, v.entries.get(k) ?? null, spec)}`).join(' ')}]`;
  }
  switch (verb) {
    case 'v':
      if (typeof v === 'number' && spec.plus && v >= 0) return pad(`+${v}`, spec, true);
      return pad(printGoValue(v === NO_VALUE ? null : v), spec, typeof v === 'number');
    case 's':
      if (typeof v !== 'string') return badVerb(verb, v);
      return pad(spec.precision === undefined ? v : [...v].slice(0, spec.precision).join(''), spec, false);
    case 'q':
      if (typeof v === 'string') return pad(goQuote(v), spec, false);
      if (typeof v === 'number') return pad(goQuote(String.fromCodePoint(v), "'"), spec, false);
      return badVerb(verb, v);
    case 'd':
      if (typeof v !== 'number') return badVerb(verb, v);
      return pad(`${spec.plus && v >= 0 ? '+' : ''}${Math.trunc(v)}`, spec, true);
    case 'x':
    case 'X': {
      if (typeof v === 'string') return pad(hexOfString(v, verb === 'X'), spec, false);
      if (typeof v !== 'number') return badVerb(verb, v);
      const h = (v < 0 ? '-' : '') + Math.abs(Math.trunc(v)).toString(16);
      return pad(verb === 'X' ? h.toUpperCase() : h, spec, true);
    }
    case 'c':
      return typeof v === 'number' ? pad(String.fromCodePoint(v), spec, false) : badVerb(verb, v);
    case 't':
      return typeof v === 'boolean' ? pad(String(v), spec, false) : badVerb(verb, v);
    case 'f':
    case 'e':
    case 'g':
      if (!(v instanceof GoFloat)) return badVerb(verb, v);
      return pad(`${spec.plus && v.value >= 0 ? '+' : ''}${formatFloat(v.value, verb, spec)}`, spec, true);
    default:
      return badVerb(verb, v);
  }
}

/** fmt.Sprintf. */
export function goSprintf(format: string, args: readonly GoValue[]): string {
  let out = '';
  let argi = 0;
  for (let i = 0; i < format.length; i++) {
    const c = format[i] as string;
    if (c !== '%') {
      out += c;
      continue;
    }
    const spec: Spec = { minus: false, zero: false, plus: false, width: undefined, precision: undefined };
    let j = i + 1;
    for (; j < format.length; j++) {
      const f = format[j];
      if (f === '-') spec.minus = true;
      else if (f === '0') spec.zero = true;
      else if (f === '+') spec.plus = true;
      else if (f === '#' || f === ' ') continue;
      else break;
    }
    const w = /^\d+/.exec(format.slice(j));
    if (w) {
      spec.width = Number(w[0]);
      j += w[0].length;
    }
    if (format[j] === '.') {
      const p = /^\d*/.exec(format.slice(j + 1)) as RegExpExecArray;
      spec.precision = p[0] === '' ? 0 : Number(p[0]);
      j += 1 + p[0].length;
    }
    const verb = format[j];
    i = j;
    if (verb === undefined) {
      out += '%!(NOVERB)';
      break;
    }
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    out += formatOne(verb, args[argi++] as GoValue, spec);
  }
  if (argi < args.length) {
    const extra = args.slice(argi).map((a) => (a === null || a === NO_VALUE ? '<nil>' : `${goTypeName(a)}=${printGoValue(a)}`));
    out += `%!(EXTRA ${extra.join(', ')})`;
  }
  return out;
}

/** fmt.Sprint: operands joined, with a space between two operands when neither is a string. */
export function goSprint(args: readonly GoValue[]): string {
  let out = '';
  args.forEach((a, i) => {
    const prev = args[i - 1];
    if (i > 0 && typeof a !== 'string' && typeof prev !== 'string') out += ' ';
    out += printGoValue(a === NO_VALUE ? null : a);
  });
  return out;
}

/** fmt.Sprintln: operands always space-separated, newline at the end. */
export function goSprintln(args: readonly GoValue[]): string {
  return `${args.map((a) => printGoValue(a === NO_VALUE ? null : a)).join(' ')}\n`;
}

