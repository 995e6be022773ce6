/**
 * Go `encoding/json` compatible serialisation of plain JSON values, as spire-server's CLI
 * prints them after round-tripping protojson through a Go `map[string]any`: compact, object
 * keys sorted bytewise, `<`, `>`, `&`, U+2028 and U+2029 escaped, lone surrogates replaced.
 */
import { GO_SHORT_ESCAPES } from './go-format.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const HEX = '0123456789abcdef';

/** `<`, `>`, `&`, U+2028 and U+2029: written as \u escapes (encoding/json's HTMLEscape). */
const HTML_UNSAFE: ReadonlySet<number> = new Set([0x3c, 0x3e, 0x26, 0x2028, 0x2029]);

function u4(code: number): string {
  return '\\u' + HEX[(code >> 12) & 15]! + HEX[(code >> 8) & 15]! + HEX[(code >> 4) & 15]! + HEX[code & 15]!;
}

/** A JSON string literal escaped as Go's encoding/json does (HTML-safe). */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else {
        out += '\\ufffd';
      }
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      out += '\\ufffd';
      continue;
    }
    const short = GO_SHORT_ESCAPES.get(c);
    if (short !== undefined) out += short;
    else if (c === 0x22 || c === 0x5c) out += '\\' + s[i]!;
    else if (c < 0x20 || HTML_UNSAFE.has(c)) out += u4(c);
    else out += s[i]!;
  }
  return out + '"';
}

/** Go's string ordering (bytewise over UTF-8). */
export function goStringCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function goNumber(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`json: unsupported value: ${n}`);
  // Go and JS agree: plain notation in [1e-6, 1e21), exponent otherwise (`1e+21`, `1e-7`).
  return String(n);
}

/**
 * Go `json.Marshal` of a value decoded into `any` (maps have sorted keys). With
 * `sortKeys: false` object members keep their insertion order, as for a Go struct.
 */
export function goJsonMarshal(v: JsonValue, sortKeys = true): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      return goNumber(v);
    case 'string':
      return goJsonString(v);
    default:
      break;
  }
  if (Array.isArray(v)) return '[' + v.map((x) => goJsonMarshal(x, sortKeys)).join(',') + ']';
  const keys = sortKeys ? Object.keys(v).sort(goStringCompare) : Object.keys(v);
  return '{' + keys.map((k) => goJsonString(k) + ':' + goJsonMarshal(v[k] as JsonValue, sortKeys)).join(',') + '}';
}

/** cliprinter's removeNulls: drops null members of objects and null items of arrays, recursively. */
export function removeNulls(v: JsonValue): JsonValue {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.filter((x) => x !== null).map(removeNulls);
  const out: { [key: string]: JsonValue } = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = removeNulls(x);
  return out;
}
