/**
 * The part of Go's fmt that templates reach through `printf`, `print` and `println`: verbs
 * %v %s %d %q %c %x %X %t %f %e %g %%, flags `-` `0` `+`, width and precision, and fmt's in-band
 * errors (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=1)`), which Go writes into the output
 * instead of failing (a SPIFFE ID holding them then fails to parse, as in SPIRE).
 */
import { GoFloat, GoMap, GoStruct, NO_VALUE, formatGoFloat, goTypeName, printGoValue, type GoValue } from './values.ts';

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

/** An int in decimal with fmt's sign and precision (minimum digits; precision 0 prints 0 as ""). */
function intText(n: number, spec: Spec): string {
  const t = Math.trunc(n);
  let digits = String(Math.abs(t));
  if (spec.precision !== undefined) digits = spec.precision === 0 && t === 0 ? '' : digits.padStart(spec.precision, '0');
  return `${t < 0 ? '-' : spec.plus ? '+' : ''}${digits}`;
}

/** An int as a rune: invalid code points (negative, surrogates, too large) are U+FFFD, as in Go. */
function runeText(n: number): string {
  const valid = Number.isInteger(n) && n >= 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff);
  return String.fromCodePoint(valid ? n : 0xfffd);
}

/** fmt's in-band error for a verb that does not fit the operand: the value as %v, same flags. */
function badVerb(verb: string, v: GoValue, spec: Spec): string {
  if (v === null || v === NO_VALUE) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(v)}=${formatOne('v', v, spec)})`;
}

/** strconv.FormatFloat(x, 'x', -1, 64): `0x1.8p+00`. */
function hexFloat(x: number, upper: boolean): string {
  let out: string;
  if (x === 0) out = `${Object.is(x, -0) ? '-' : ''}0x0p+00`;
  else {
    const sign = x < 0 ? '-' : '';
    let m = Math.abs(x);
    let e = Math.floor(Math.log2(m));
    m /= 2 ** e;
    if (m >= 2) {
      m /= 2;
      e++;
    } else if (m < 1) {
      m *= 2;
      e--;
    }
    let frac = m - 1;
    let digits = '';
    while (frac > 0 && digits.length < 13) {
      frac *= 16;
      const d = Math.floor(frac);
      digits += d.toString(16);
      frac -= d;
    }
    out = `${sign}0x1${digits === '' ? '' : `.${digits}`}p${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  return upper ? out.toUpperCase() : out;
}

function pad(s: string, spec: Spec, numeric: boolean): string {
  if (spec.width === undefined || s.length >= spec.width) return s;
  if (spec.minus) return s.padEnd(spec.width, ' ');
  if (spec.zero) {
    const sign = numeric && /^[+-]/.test(s) ? (s[0] as string) : '';
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
  if (Array.isArray(v)) return `[${(v as readonly GoValue[]).map((e) => formatOne(verb, e, spec)).join(' ')}]`;
  if (v instanceof GoMap) {
    const keys = [...v.entries.keys()].sort();
    return `map[${keys.map((k) => `${formatOne(verb, k, spec)}:${formatOne(verb, v.entries.get(k) ?? null, spec)}`).join(' ')}]`;
  }
  if (v instanceof GoStruct) return `{${[...v.fields.values()].map((e) => formatOne(verb, e, spec)).join(' ')}}`;
  switch (verb) {
    case 'v':
      if (typeof v === 'number') return pad(intText(v, spec), spec, spec.precision === undefined);
      return pad(printGoValue(v === NO_VALUE ? null : v), spec, typeof v === 'number');
    case 's':
      if (typeof v !== 'string') return badVerb(verb, v, spec);
      return pad(spec.precision === undefined ? v : [...v].slice(0, spec.precision).join(''), spec, false);
    case 'q':
      if (typeof v === 'string') return pad(goQuote(v), spec, false);
      if (typeof v === 'number') return pad(goQuote(runeText(v), "'"), spec, false);
      return badVerb(verb, v, spec);
    case 'd':
      if (typeof v !== 'number') return badVerb(verb, v, spec);
      return pad(intText(v, spec), spec, spec.precision === undefined);
    case 'x':
    case 'X': {
      if (typeof v === 'string') return pad(hexOfString(v, verb === 'X'), spec, false);
      if (v instanceof GoFloat) return pad(hexFloat(v.value, verb === 'X'), spec, true);
      if (typeof v !== 'number') return badVerb(verb, v, spec);
      const h = (v < 0 ? '-' : '') + Math.abs(Math.trunc(v)).toString(16);
      return pad(verb === 'X' ? h.toUpperCase() : h, spec, true);
    }
    case 'c':
      return typeof v === 'number' ? pad(runeText(v), spec, false) : badVerb(verb, v, spec);
    case 't':
      return typeof v === 'boolean' ? pad(String(v), spec, false) : badVerb(verb, v, spec);
    case 'f':
    case 'e':
    case 'g':
      if (!(v instanceof GoFloat)) return badVerb(verb, v, spec);
      return pad(`${spec.plus && v.value >= 0 ? '+' : ''}${formatFloat(v.value, verb, spec)}`, spec, true);
    default:
      return badVerb(verb, v, spec);
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
