import type { ConfigEntry, ConfigObject, ConfigValue } from './node.ts';

/**
 * A parser for the subset of HCL that SPIRE's configuration files use: attributes
 * (`key = value`), blocks with optional string labels (`plugins { DataStore "sql" { ... } }`),
 * strings, numbers, booleans, null, lists, objects (`{ k = v }` or `{ "k": v }`) and
 * `#`, `//` and block comments. Heredocs and expressions are reported as unsupported.
 *
 * Written here rather than taken from npm because the available HCL packages (gopherjs
 * builds of hashicorp/hcl) return bare JSON without source lines, and our config errors
 * must name the line of an unknown or invalid key.
 */
export class HclSyntaxError extends Error {
  readonly line: number;
  constructor(message: string, line: number) {
    super(`line ${line}: ${message}`);
    this.line = line;
    this.name = 'HclSyntaxError';
  }
}

type Tok =
  | { t: 'ident'; v: string; line: number }
  | { t: 'string'; v: string; line: number }
  | { t: 'number'; v: number; line: number }
  | { t: 'punct'; v: string; line: number }
  | { t: 'nl'; line: number }
  | { t: 'eof'; line: number };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let line = 1;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === '\n') {
      out.push({ t: 'nl', line });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#' || (c === '/' && src[i + 1] === '/')) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new HclSyntaxError('unterminated block comment', line);
      for (let k = i; k < end; k++) if (src[k] === '\n') line++;
      i = end + 2;
    } else if (c === '"') {
      const startLine = line;
      let s = '';
      i++;
      for (;;) {
        if (i >= src.length || src[i] === '\n') throw new HclSyntaxError('unterminated string', startLine);
        const d = src[i] as string;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\') {
          const e = src[i + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };
          if (e !== undefined && e in map) {
            s += map[e];
            i += 2;
          } else if (e === 'u') {
            const hex = src.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new HclSyntaxError('invalid \\u escape', line);
            s += String.fromCharCode(parseInt(hex, 16));
            i += 6;
          } else {
            throw new HclSyntaxError(`invalid escape sequence \\${e ?? ''}`, line);
          }
          continue;
        }
        if (d === '$' && src[i + 1] === '{') throw new HclSyntaxError('template interpolation is not supported', line);
        s += d;
        i++;
      }
      out.push({ t: 'string', v: s, line: startLine });
    } else if (c === '<' && src[i + 1] === '<') {
      throw new HclSyntaxError('heredoc strings are not supported; use a quoted string', line);
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(src.slice(i));
      if (m === null || m[0] === '-') throw new HclSyntaxError(`unexpected character "${c}"`, line);
      out.push({ t: 'number', v: Number(m[0]), line });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ t: 'ident', v: m[0], line });
      i += m[0].length;
    } else if ('{}[]=,:'.includes(c)) {
      out.push({ t: 'punct', v: c, line });
      i++;
    } else {
      throw new HclSyntaxError(`unexpected character "${c}"`, line);
    }
  }
  out.push({ t: 'eof', line });
  return out;
}

class Parser {
  private pos = 0;
  private readonly toks: Tok[];
  constructor(toks: Tok[]) {
    this.toks = toks;
  }

  private peek(): Tok {
    return this.toks[this.pos] as Tok;
  }
  private next(): Tok {
    return this.toks[this.pos++] as Tok;
  }
  private skipNl(): void {
    while (this.peek().t === 'nl') this.pos++;
  }
  private expectPunct(v: string): Tok {
    const t = this.next();
    if (t.t !== 'punct' || t.v !== v) throw new HclSyntaxError(`expected "${v}", found ${describe(t)}`, t.line);
    return t;
  }

  body(until: '}' | 'eof', line: number): ConfigObject {
    const entries: ConfigEntry[] = [];
    for (;;) {
      this.skipNl();
      const t = this.peek();
      if (until === 'eof' && t.t === 'eof') break;
      if (until === '}' && t.t === 'punct' && t.v === '}') {
        this.pos++;
        break;
      }
      if (t.t === 'eof') throw new HclSyntaxError('unexpected end of file; missing "}"', t.line);
      if (t.t !== 'ident' && t.t !== 'string') throw new HclSyntaxError(`expected a key, found ${describe(t)}`, t.line);
      this.pos++;
      const key = t.v;
      const after = this.peek();
      if (after.t === 'punct' && after.v === '=') {
        this.pos++;
        const value = this.value();
        entries.push({ key, labels: [], value, line: t.line });
        const end = this.peek();
        if (!(end.t === 'nl' || end.t === 'eof' || (end.t === 'punct' && end.v === '}'))) {
          throw new HclSyntaxError(`expected a newline after the value of "${key}", found ${describe(end)}`, end.line);
        }
        continue;
      }
      const labels: string[] = [];
      while (this.peek().t === 'string' || this.peek().t === 'ident') {
        const l = this.next() as { v: string };
        labels.push(l.v);
      }
      const open = this.peek();
      if (!(open.t === 'punct' && open.v === '{')) {
        throw new HclSyntaxError(`expected "=" or a block after "${key}", found ${describe(open)}`, open.line);
      }
      this.pos++;
      const value = this.body('}', open.line);
      entries.push({ key, labels, value, line: t.line });
    }
    return { kind: 'object', entries, line };
  }

  value(): ConfigValue {
    this.skipNl();
    const t = this.next();
    switch (t.t) {
      case 'string':
        return { kind: 'string', value: t.v, line: t.line };
      case 'number':
        return { kind: 'number', value: t.v, line: t.line };
      case 'ident':
        if (t.v === 'true' || t.v === 'false') return { kind: 'bool', value: t.v === 'true', line: t.line };
        if (t.v === 'null') return { kind: 'null', line: t.line };
        throw new HclSyntaxError(`unexpected identifier "${t.v}" (expressions are not supported; quote strings)`, t.line);
      case 'punct':
        if (t.v === '[') return this.list(t.line);
        if (t.v === '{') return this.object(t.line);
        throw new HclSyntaxError(`unexpected "${t.v}"`, t.line);
      default:
        throw new HclSyntaxError(`expected a value, found ${describe(t)}`, t.line);
    }
  }

  private list(line: number): ConfigValue {
    const items: ConfigValue[] = [];
    for (;;) {
      this.skipNl();
      const t = this.peek();
      if (t.t === 'punct' && t.v === ']') {
        this.pos++;
        return { kind: 'list', items, line };
      }
      items.push(this.value());
      this.skipNl();
      const sep = this.peek();
      if (sep.t === 'punct' && sep.v === ',') this.pos++;
      else if (!(sep.t === 'punct' && sep.v === ']')) throw new HclSyntaxError(`expected "," or "]", found ${describe(sep)}`, sep.line);
    }
  }

  private object(line: number): ConfigValue {
    const entries: ConfigEntry[] = [];
    for (;;) {
      this.skipNl();
      const t = this.next();
      if (t.t === 'punct' && t.v === '}') return { kind: 'object', entries, line };
      if (t.t !== 'ident' && t.t !== 'string') throw new HclSyntaxError(`expected a key, found ${describe(t)}`, t.line);
      const sep = this.next();
      if (!(sep.t === 'punct' && (sep.v === '=' || sep.v === ':'))) {
        throw new HclSyntaxError(`expected "=" or ":" after "${t.v}", found ${describe(sep)}`, sep.line);
      }
      entries.push({ key: t.v, labels: [], value: this.value(), line: t.line });
      const after = this.peek();
      if (after.t === 'punct' && after.v === ',') this.pos++;
    }
  }
}

function describe(t: Tok): string {
  switch (t.t) {
    case 'nl':
      return 'end of line';
    case 'eof':
      return 'end of file';
    case 'string':
      return `string "${t.v}"`;
    case 'number':
      return `number ${t.v}`;
    default:
      return `"${t.v}"`;
  }
}

/** Parses an HCL document into a position-carrying ConfigObject. Throws HclSyntaxError. */
export function parseHcl(src: string): ConfigObject {
  return new Parser(tokenize(src)).body('eof', 1);
}
