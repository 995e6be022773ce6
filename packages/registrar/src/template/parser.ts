/**
 * Parser for Go text/template: the tree of text, actions, if/with/range (with `else`,
 * `else if`, `else with`), pipelines with variable declarations, commands and operands. Like Go's
 * parser it refuses unknown functions and undefined variables at parse time, so the admission
 * webhook refuses what SPIRE's webhook refuses. `define`/`template`/`block` are refused: ztwim
 * has no named templates (SPIRE would accept them; no ClusterSPIFFEID we know of uses them).
 */
import { lex, parseError, type Token } from './lexer.ts';
import { BUILTIN_FUNCTIONS } from './functions.ts';

export type Operand =
  | { readonly kind: 'field'; readonly chain: readonly string[]; readonly pos: number }
  | { readonly kind: 'dot'; readonly pos: number }
  | { readonly kind: 'variable'; readonly name: string; readonly chain: readonly string[]; readonly pos: number }
  | { readonly kind: 'function'; readonly name: string; readonly pos: number }
  | { readonly kind: 'string'; readonly value: string; readonly pos: number }
  | { readonly kind: 'number'; readonly text: string; readonly pos: number }
  | { readonly kind: 'char'; readonly value: number; readonly pos: number }
  | { readonly kind: 'bool'; readonly value: boolean; readonly pos: number }
  | { readonly kind: 'nil'; readonly pos: number }
  | { readonly kind: 'pipeline'; readonly pipe: Pipeline; readonly chain: readonly string[]; readonly pos: number };

export interface Command {
  readonly args: readonly Operand[];
  readonly pos: number;
}

export interface Pipeline {
  /** Variables declared (`$x :=`) or assigned (`$x =`) by this pipeline. */
  readonly vars: readonly string[];
  readonly isAssign: boolean;
  readonly cmds: readonly Command[];
  readonly pos: number;
}

/** `{{if}}`, `{{with}}` or `{{range}}` with its body and `{{else}}` body. */
export interface ControlNode {
  readonly kind: 'if' | 'with' | 'range';
  readonly pipe: Pipeline;
  readonly list: readonly Node[];
  readonly elseList: readonly Node[];
}

export type Node =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'action'; readonly pipe: Pipeline }
  | ControlNode
  | { readonly kind: 'break' | 'continue'; readonly pos: number };

class Parser {
  private i = 0;
  /** Declared variables per open scope ($ is always defined). */
  private readonly scopes: string[][] = [['$']];
  private rangeDepth = 0;

  private readonly text: string;
  private readonly tokens: readonly Token[];

  constructor(text: string, tokens: readonly Token[]) {
    this.text = text;
    this.tokens = tokens;
  }

  parse(): Node[] {
    const { list, end } = this.parseList();
    if (end !== 'eof') throw this.error(this.prev(), `unexpected {{${end}}}`);
    return list;
  }

  private error(tok: Token | undefined, message: string): Error {
    return parseError(this.text, tok?.pos ?? this.text.length, message);
  }

  private prev(): Token | undefined {
    return this.tokens[this.i - 1];
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private next(): Token | undefined {
    return this.tokens[this.i++];
  }

  private peekNonSpace(): Token | undefined {
    while (this.peek()?.kind === 'space') this.i++;
    return this.peek();
  }

  private nextNonSpace(): Token | undefined {
    this.peekNonSpace();
    return this.next();
  }

  private expectClose(context: string): void {
    const t = this.nextNonSpace();
    if (t?.kind !== 'close') throw this.error(t, `unexpected ${describe(t)} in ${context}`);
  }

  /** Nodes until `{{end}}`, `{{else}}` or the end of input (which of them is returned in `end`). */
  private parseList(): { list: Node[]; end: 'end' | 'else' | 'eof' } {
    const list: Node[] = [];
    for (;;) {
      const t = this.next();
      if (t === undefined) return { list, end: 'eof' };
      if (t.kind === 'text') {
        list.push({ kind: 'text', text: t.value });
        continue;
      }
      // t is `{{`
      const first = this.peekNonSpace();
      if (first?.kind === 'keyword') {
        switch (first.value) {
          case 'end':
            this.next();
            this.expectClose('end');
            return { list, end: 'end' };
          case 'else':
            this.next();
            return { list, end: 'else' };
          case 'if':
          case 'with':
          case 'range':
            this.next();
            list.push(this.parseControl(first.value, first));
            continue;
          case 'break':
          case 'continue':
            this.next();
            if (this.rangeDepth === 0) throw this.error(first, `{{${first.value}}} outside {{range}}`);
            this.expectClose(first.value);
            list.push({ kind: first.value, pos: first.pos });
            continue;
          case 'define':
          case 'template':
          case 'block':
            throw this.error(first, `{{${first.value}}} is not supported (ztwim has no named templates)`);
          default:
            break;
        }
      }
      const pipe = this.parsePipeline('command', true);
      list.push({ kind: 'action', pipe });
    }
  }

  /** if/with/range after its keyword, through its `{{end}}`. */
  private parseControl(kind: 'if' | 'with' | 'range', kw: Token): Node {
    this.scopes.push([]);
    try {
      const pipe = this.parsePipeline(kind, false);
      if (kind === 'range') this.rangeDepth++;
      let r;
      try {
        r = this.parseList();
      } finally {
        if (kind === 'range') this.rangeDepth--;
      }
      if (r.end === 'eof') throw this.error(kw, `unexpected EOF: {{${kind}}} has no {{end}}`);
      let elseList: Node[] = [];
      if (r.end === 'else') {
        const after = this.peekNonSpace();
        if ((kind === 'if' || kind === 'with') && after?.kind === 'keyword' && after.value === kind) {
          // `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing the outer `{{end}}`.
          this.next();
          elseList = [this.parseControl(kind, after)];
        } else {
          this.expectClose('else');
          const e = this.parseList();
          if (e.end !== 'end') throw this.error(kw, `unexpected ${e.end === 'eof' ? 'EOF' : '{{else}}'}: {{${kind}}} has no {{end}}`);
          elseList = e.list;
        }
      }
      return { kind, pipe, list: r.list, elseList };
    } finally {
      this.scopes.pop();
    }
  }

  private isDeclared(name: string): boolean {
    return this.scopes.some((s) => s.includes(name));
  }

  /** A pipeline up to `}}` (or `)` when `inParens`), with an optional `$x :=` in front. */
  private parsePipeline(context: string, allowAssign: boolean, inParens = false): Pipeline {
    const start = this.peekNonSpace();
    const vars: string[] = [];
    let isAssign = false;
    // Declarations: `$x :=`, `$x =`, and for range `$i, $e :=`.
    if (start?.kind === 'variable') {
      const save = this.i;
      const names: string[] = [this.next()!.value];
      let t = this.nextNonSpace();
      if (t?.kind === 'comma' && context === 'range') {
        const v2 = this.nextNonSpace();
        if (v2?.kind !== 'variable') throw this.error(v2, 'range can only initialize variables');
        names.push(v2.value);
        t = this.nextNonSpace();
        if (t?.kind !== 'declare' && t?.kind !== 'assign') throw this.error(t, 'expected := or = after range variables');
      }
      if (t?.kind === 'declare' || t?.kind === 'assign') {
        isAssign = t.kind === 'assign';
        if (isAssign && !allowAssign && context !== 'range' && context !== 'if' && context !== 'with') {
          throw this.error(t, 'unexpected assignment');
        }
        for (const n of names) {
          if (isAssign && !this.isDeclared(n)) throw this.error(start, `undefined variable "${n}"`);
          if (n === '$') throw this.error(start, 'cannot assign to $');
        }
        vars.push(...names);
      } else this.i = save;
    }
    const cmds: Command[] = [];
    for (;;) {
      const cmd = this.parseCommand(inParens);
      cmds.push(cmd);
      const t = this.nextNonSpace();
      if (t?.kind === 'pipe') continue;
      if (inParens ? t?.kind === 'rparen' : t?.kind === 'close') break;
      throw this.error(t, `unexpected ${describe(t)} in ${context}`);
    }
    if (!isAssign) this.scopes[this.scopes.length - 1]?.push(...vars);
    for (const [n, c] of cmds.entries()) {
      const first = c.args[0];
      if (n > 0 && first !== undefined && !['field', 'function', 'pipeline', 'variable', 'dot'].includes(first.kind)) {
        throw this.error(
          this.tokens.find((t) => t.pos === first.pos),
          `non executable command in pipeline stage ${n + 1}`,
        );
      }
    }
    return { vars, isAssign, cmds, pos: start?.pos ?? 0 };
  }

  private parseCommand(inParens: boolean): Command {
    const args: Operand[] = [];
    const start = this.peekNonSpace();
    for (;;) {
      const t = this.peekNonSpace();
      if (t === undefined || t.kind === 'close' || t.kind === 'pipe' || (inParens && t.kind === 'rparen')) break;
      args.push(this.parseOperand());
      const after = this.peek();
      if (after !== undefined && after.kind !== 'space' && after.kind !== 'close' && after.kind !== 'pipe' && after.kind !== 'rparen') {
        throw this.error(after, `unexpected ${describe(after)} in operand`);
      }
    }
    if (args.length === 0) throw this.error(start, 'missing value for command');
    return { args, pos: start?.pos ?? 0 };
  }

  /** A term and the `.Field` chain glued to it. */
  private parseOperand(): Operand {
    const t = this.next()!;
    const chainAfter = (): string[] => {
      const chain: string[] = [];
      while (this.peek()?.kind === 'field') chain.push(this.next()!.value.slice(1));
      return chain;
    };
    switch (t.kind) {
      case 'field':
        return { kind: 'field', chain: [t.value.slice(1), ...chainAfter()], pos: t.pos };
      case 'dot':
        if (this.peek()?.kind === 'field') throw this.error(this.peek(), 'unexpected . after term "."');
        return { kind: 'dot', pos: t.pos };
      case 'variable': {
        if (!this.isDeclared(t.value)) throw this.error(t, `undefined variable "${t.value}"`);
        return { kind: 'variable', name: t.value, chain: chainAfter(), pos: t.pos };
      }
      case 'identifier':
        if (!BUILTIN_FUNCTIONS.has(t.value)) throw this.error(t, `function "${t.value}" not defined`);
        if (this.peek()?.kind === 'field') throw this.error(this.peek(), `unexpected . after term "${t.value}"`);
        return { kind: 'function', name: t.value, pos: t.pos };
      case 'string':
        return { kind: 'string', value: t.value, pos: t.pos };
      case 'number':
        return { kind: 'number', text: t.value, pos: t.pos };
      case 'char':
        return { kind: 'char', value: Number(t.value), pos: t.pos };
      case 'keyword':
        if (t.value === 'true' || t.value === 'false') return { kind: 'bool', value: t.value === 'true', pos: t.pos };
        if (t.value === 'nil') return { kind: 'nil', pos: t.pos };
        throw this.error(t, `unexpected keyword "${t.value}" in operand`);
      case 'lparen': {
        const pipe = this.parsePipeline('parenthesized pipeline', false, true);
        return { kind: 'pipeline', pipe, chain: chainAfter(), pos: t.pos };
      }
      default:
        throw this.error(t, `unexpected ${describe(t)} in operand`);
    }
  }
}

function describe(t: Token | undefined): string {
  if (t === undefined) return 'EOF';
  if (t.kind === 'close') return '"}}"';
  return JSON.stringify(t.value);
}

export function parseNodes(text: string): Node[] {
  return new Parser(text, lex(text)).parse();
}
