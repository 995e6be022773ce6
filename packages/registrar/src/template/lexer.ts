/**
 * Lexer for Go text/template (default `{{`/`}}` delimiters), following text/template/parse/lex.go:
 * text, actions with `{{- `/` -}}` trim markers, `{{/* comments *\/}}`, fields, variables,
 * identifiers, keywords, string/raw-string/char/number literals, `|`, `(`, `)`, `:=`, `=`, `,`.
 */
import { RegistrarError } from '../errors.ts';

export type TokenKind =
  | 'text'
  | 'open' // `{{` (trim markers already applied to the neighbouring text)
  | 'close' // `}}`
  | 'space'
  | 'field' // `.Name`
  | 'dot' // `.`
  | 'variable' // `$` or `$name`
  | 'identifier' // function name
  | 'keyword' // if else end with range break continue define template block nil true false
  | 'string' // value already unquoted
  | 'char' // value is the code point as decimal text
  | 'number'
  | 'pipe'
  | 'lparen'
  | 'rparen'
  | 'declare'
  | 'assign'
  | 'comma';

export interface Token {
  readonly kind: TokenKind;
  readonly value: string;
  /** Offset of the token in the template text. */
  readonly pos: number;
}

const KEYWORDS = new Set(['if', 'else', 'end', 'with', 'range', 'break', 'continue', 'define', 'template', 'block', 'nil', 'true', 'false']);
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isAlnum = (c: string | undefined): boolean => c !== undefined && /^[\p{L}\p{Nd}_]$/u.test(c);

/** Line and column (1-based) of an offset, and the text around it, for error messages. */
export function describePosition(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  const near = text.slice(Math.max(0, pos - 10), pos + 20).replace(/\n/g, '\\n');
  return `line ${line} col ${col} near ${JSON.stringify(near)}`;
}

export function parseError(text: string, pos: number, message: string): RegistrarError {
  return new RegistrarError('template_parse', `template: ${message} at ${describePosition(text, pos)}`);
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

/** Go's strconv.Unquote for the body of an interpreted string or char literal. */
function unescape(text: string, start: number, body: string, quote: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) throw parseError(text, start + i, 'unterminated escape');
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined && (e !== "'" || quote === "'") && (e !== '"' || quote === '"')) {
      out += simple;
      i++;
      continue;
    }
    const hexLen = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hexLen > 0) {
      const hex = body.slice(i + 2, i + 2 + hexLen);
      if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(hex)) throw parseError(text, start + i, `bad escape \\${e}${hex}`);
      out += e === 'x' ? String.fromCharCode(parseInt(hex, 16)) : String.fromCodePoint(parseInt(hex, 16));
      i += 1 + hexLen;
      continue;
    }
    if (/^[0-7]$/.test(e)) {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) throw parseError(text, start + i, `bad escape \\${oct}`);
      out += String.fromCharCode(parseInt(oct, 8));
      i += 3;
      continue;
    }
    throw parseError(text, start + i, `unknown escape \\${e}`);
  }
  return out;
}

export function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  let trimNextText = false;
  while (pos < text.length) {
    const open = text.indexOf('{{', pos);
    let chunk = open < 0 ? text.slice(pos) : text.slice(pos, open);
    const leftTrim = open >= 0 && text[open + 2] === '-' && isSpace(text[open + 3]);
    if (trimNextText) chunk = chunk.replace(/^[ \t\r\n]+/, '');
    if (leftTrim) chunk = chunk.replace(/[ \t\r\n]+$/, '');
    if (chunk.length > 0) tokens.push({ kind: 'text', value: chunk, pos });
    trimNextText = false;
    if (open < 0) break;
    pos = open + 2 + (leftTrim ? 2 : 0);
    tokens.push({ kind: 'open', value: '{{', pos: open });
    if (text.startsWith('/*', pos)) {
      const end = text.indexOf('*/', pos + 2);
      if (end < 0) throw parseError(text, pos, 'unclosed comment');
      pos = end + 2;
      if (text.startsWith('}}', pos)) pos += 2;
      else if (isSpace(text[pos]) && text.startsWith('-}}', pos + 1)) {
        pos += 4;
        trimNextText = true;
      } else throw parseError(text, pos, 'comment ends before closing delimiter');
      tokens.pop(); // a comment is no action
      continue;
    }
    const r = lexAction(text, pos, open, tokens);
    pos = r.pos;
    trimNextText = r.trim;
  }
  return tokens;
}

/** Lexes one action's body from `pos` (just after `{{` and any trim marker) through its `}}`. */
function lexAction(text: string, start: number, open: number, tokens: Token[]): { pos: number; trim: boolean } {
  let pos = start;
  let parens = 0;
  for (;;) {
    if (pos >= text.length) throw parseError(text, open, 'unclosed action');
    const c = text[pos] as string;
    if (isSpace(c) && text.startsWith('-}}', pos + 1)) {
      tokens.push({ kind: 'close', value: '}}', pos });
      return { pos: pos + 4, trim: true };
    }
    if (text.startsWith('}}', pos)) {
      if (parens > 0) throw parseError(text, pos, 'unclosed left paren');
      tokens.push({ kind: 'close', value: '}}', pos });
      return { pos: pos + 2, trim: false };
    }
    if (isSpace(c)) {
      let end = pos;
      while (isSpace(text[end])) end++;
      // Leave the last space for a ` -}}` right trim marker.
      if (end > pos + 1 && text.startsWith('-}}', end)) end--;
      tokens.push({ kind: 'space', value: ' ', pos });
      pos = end;
      continue;
    }
    const start1 = pos;
    if (c === '"' || c === "'") {
      let i = pos + 1;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\n') throw parseError(text, pos, c === '"' ? 'unterminated quoted string' : 'unterminated character constant');
        i += text[i] === '\\' ? 2 : 1;
      }
      if (i >= text.length) throw parseError(text, pos, c === '"' ? 'unterminated quoted string' : 'unterminated character constant');
      const body = unescape(text, pos + 1, text.slice(pos + 1, i), c);
      if (c === "'") {
        const cps = [...body];
        if (cps.length !== 1) throw parseError(text, pos, `malformed character constant ${text.slice(pos, i + 1)}`);
        tokens.push({ kind: 'char', value: String(cps[0]?.codePointAt(0)), pos });
      } else tokens.push({ kind: 'string', value: body, pos });
      pos = i + 1;
      continue;
    }
    if (c === '`') {
      const end = text.indexOf('`', pos + 1);
      if (end < 0) throw parseError(text, pos, 'unterminated raw quoted string');
      tokens.push({ kind: 'string', value: text.slice(pos + 1, end).replace(/\r/g, ''), pos });
      pos = end + 1;
      continue;
    }
    if (c === '|') {
      tokens.push({ kind: 'pipe', value: c, pos: pos++ });
      continue;
    }
    if (c === ',') {
      tokens.push({ kind: 'comma', value: c, pos: pos++ });
      continue;
    }
    if (c === '(') {
      parens++;
      tokens.push({ kind: 'lparen', value: c, pos: pos++ });
      continue;
    }
    if (c === ')') {
      if (--parens < 0) throw parseError(text, pos, 'unexpected right paren');
      tokens.push({ kind: 'rparen', value: c, pos: pos++ });
      continue;
    }
    if (text.startsWith(':=', pos)) {
      tokens.push({ kind: 'declare', value: ':=', pos });
      pos += 2;
      continue;
    }
    if (c === '=') {
      tokens.push({ kind: 'assign', value: c, pos: pos++ });
      continue;
    }
    const num = /^[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)/.exec(text.slice(pos));
    if (num && (c !== '.' || /\d/.test(text[pos + 1] ?? '')) && (c !== '+' && c !== '-' ? true : num[0].length > 1)) {
      tokens.push({ kind: 'number', value: num[0], pos });
      pos += num[0].length;
      if (isAlnum(text[pos]) || text[pos] === '.') throw parseError(text, start1, `bad number syntax: ${JSON.stringify(text.slice(start1, pos + 1))}`);
      continue;
    }
    if (c === '.' || c === '$') {
      let i = pos + 1;
      while (isAlnum(text[i])) i++;
      const kind: TokenKind = c === '$' ? 'variable' : i === pos + 1 ? 'dot' : 'field';
      tokens.push({ kind, value: text.slice(pos, i), pos });
      pos = i;
      continue;
    }
    if (isAlnum(c)) {
      let i = pos;
      while (isAlnum(text[i])) i++;
      const word = text.slice(pos, i);
      tokens.push({ kind: KEYWORDS.has(word) ? 'keyword' : 'identifier', value: word, pos });
      pos = i;
      continue;
    }
    throw parseError(text, pos, `unrecognized character in action: ${JSON.stringify(c)}`);
  }
}
