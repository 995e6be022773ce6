/**
 * Go text/template, the subset SPIRE's controller manager templates use, written here because no
 * npm package implements it faithfully: the closest, @ctrl/golang-template 2.0.1, has no
 * `printf`, pipelines or `{{-`/`-}}` trim markers, and renders a missing key as "" where Go
 * renders `<no value>` (checked 2026-12). Semantics follow Go's default (missingkey=default) mode,
 * which the controller manager uses:
 * - `.A.B` reads struct fields (an unknown field is an error naming the type) and map keys (an
 *   absent key renders `<no value>`; a field read on `<no value>` stays `<no value>`);
 * - `index m "k"` of an absent key gives the map's zero value ("" for labels/annotations);
 * - printf's in-band errors (`%!s(<nil>)`, `%!d(string=x)`) are written, not thrown.
 * The controller manager renders, then parses the result as a SPIFFE ID of its trust domain; a
 * `<no value>` or `%!` in the path makes that parse fail, and the pod counts as a render failure
 * (`renderSpiffeId` below does both steps). DNS name and selector templates are not checked
 * further by the controller manager; neither are they here.
 */
import { SpiffeId } from '@ztwim/spiffe';
import { RegistrarError } from '../errors.ts';
import { FUNCTIONS, FunctionError } from './functions.ts';
import { describePosition } from './lexer.ts';
import { parseNodes, type Command, type ControlNode, type Node, type Operand, type Pipeline } from './parser.ts';
import { GoFloat, GoMap, GoStruct, NO_VALUE, goTypeName, isTrue, printGoValue, type GoValue } from './values.ts';

/** The root of a template's data: `templateDataFor` builds the controller manager's. */
export type TemplateData = GoStruct;

export interface RenderOptions {
  /**
   * Go's `missingkey` option. `default` (the controller manager's) renders `<no value>`; `error`
   * throws `template_render` naming the key instead.
   */
  readonly missingKey?: 'default' | 'error';
}

class RenderError extends Error {
  readonly pos: number;

  constructor(pos: number, message: string) {
    super(message);
    this.pos = pos;
  }
}

class LoopSignal {
  readonly kind: 'break' | 'continue';

  constructor(kind: 'break' | 'continue') {
    this.kind = kind;
  }
}

/** A value still to be written, distinguished from "no piped value". */
const NO_FINAL: unique symbol = Symbol('no final');
type Final = GoValue | typeof NO_FINAL;

/**
 * Bounds on one execution, so a hostile custom resource cannot make the registrar spin or fill
 * memory (`{{ range 1000000000 }}`); Go has none, but no SPIFFE ID, DNS name or selector comes
 * near them (a SPIFFE ID is at most 2048 bytes).
 */
const MAX_STEPS = 100_000;
const MAX_OUTPUT = 64 * 1024;

class Executor {
  private out = '';
  private steps = 0;
  private readonly vars: Array<[string, GoValue]>;
  private readonly root: GoStruct;
  private readonly missingKey: 'default' | 'error';

  constructor(root: GoStruct, missingKey: 'default' | 'error') {
    this.root = root;
    this.missingKey = missingKey;
    this.vars = [['$', root]];
  }

  run(nodes: readonly Node[]): string {
    this.walkList(this.root, nodes);
    return this.out;
  }

  private walkList(dot: GoValue, nodes: readonly Node[]): void {
    const mark = this.vars.length;
    try {
      for (const n of nodes) this.walk(dot, n);
    } finally {
      this.vars.length = mark;
    }
  }

  private walk(dot: GoValue, n: Node): void {
    if (++this.steps > MAX_STEPS) throw new RenderError(0, `template runs more than ${MAX_STEPS} steps`);
    if (this.out.length > MAX_OUTPUT) throw new RenderError(0, `template output exceeds ${MAX_OUTPUT} bytes`);
    switch (n.kind) {
      case 'text':
        this.out += n.text;
        return;
      case 'action': {
        const v = this.evalPipeline(dot, n.pipe);
        if (n.pipe.vars.length === 0) this.out += printGoValue(v);
        if (this.out.length > MAX_OUTPUT) throw new RenderError(0, `template output exceeds ${MAX_OUTPUT} bytes`);
        return;
      }
      case 'if':
      case 'with': {
        const mark = this.vars.length;
        try {
          const v = this.evalPipeline(dot, n.pipe);
          if (isTrue(v)) this.walkList(n.kind === 'with' ? v : dot, n.list);
          else this.walkList(dot, n.elseList);
        } finally {
          this.vars.length = mark;
        }
        return;
      }
      case 'range':
        this.walkRange(dot, n);
        return;
      case 'break':
      case 'continue':
        throw new LoopSignal(n.kind);
    }
  }

  private walkRange(dot: GoValue, n: ControlNode): void {
    const mark = this.vars.length;
    try {
      const pipe: Pipeline = { ...n.pipe, vars: [] };
      const v = this.evalPipeline(dot, pipe);
      let items: Array<[GoValue, GoValue]>;
      if (Array.isArray(v)) items = (v as readonly GoValue[]).map((e, i) => [i, e]);
      else if (v instanceof GoMap) items = [...v.entries.keys()].sort().map((k) => [k, v.entries.get(k) as GoValue]);
      else if (typeof v === 'number') {
        if (v > MAX_STEPS) throw new RenderError(n.pipe.pos, `template runs more than ${MAX_STEPS} steps`);
        items = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
      } else if (v === null || v === NO_VALUE) items = [];
      else throw new RenderError(n.pipe.pos, `range can't iterate over ${printGoValue(v)}`);
      if (items.length === 0) {
        this.walkList(dot, n.elseList);
        return;
      }
      for (const [k, e] of items) {
        if (++this.steps > MAX_STEPS) throw new RenderError(n.pipe.pos, `template runs more than ${MAX_STEPS} steps`);
        const inner = this.vars.length;
        const [v1, v2] = n.pipe.vars;
        if (v1 !== undefined) this.setVar(v1, v2 === undefined ? e : k, n.pipe.isAssign);
        if (v2 !== undefined) this.setVar(v2, e, n.pipe.isAssign);
        try {
          this.walkList(e, n.list);
        } catch (err) {
          if (!(err instanceof LoopSignal)) throw err;
          if (err.kind === 'break') break;
        } finally {
          this.vars.length = inner;
        }
      }
    } finally {
      this.vars.length = mark;
    }
  }

  private setVar(name: string, value: GoValue, isAssign: boolean): void {
    if (!isAssign) {
      this.vars.push([name, value]);
      return;
    }
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const entry = this.vars[i] as [string, GoValue];
      if (entry[0] === name) {
        entry[1] = value;
        return;
      }
    }
  }

  private varValue(name: string, pos: number): GoValue {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const [n, v] = this.vars[i] as [string, GoValue];
      if (n === name) return v;
    }
    throw new RenderError(pos, `undefined variable: ${name}`);
  }

  private evalPipeline(dot: GoValue, pipe: Pipeline): GoValue {
    let value: Final = NO_FINAL;
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value);
    const v = value === NO_FINAL ? NO_VALUE : value;
    for (const name of pipe.vars) this.setVar(name, v, pipe.isAssign);
    return v;
  }

  private evalCommand(dot: GoValue, cmd: Command, final: Final): GoValue {
    const [first, ...rest] = cmd.args as [Operand, ...Operand[]];
    if (first.kind === 'function') return this.evalFunction(dot, first, rest, final);
    if (rest.length > 0 || final !== NO_FINAL) {
      throw new RenderError(first.pos, `can't give argument to non-function ${describeOperand(first)}`);
    }
    if (first.kind === 'nil') throw new RenderError(first.pos, 'nil is not a command');
    return this.evalArg(dot, first);
  }

  private evalFunction(dot: GoValue, fn: Extract<Operand, { kind: 'function' }>, args: readonly Operand[], final: Final): GoValue {
    const all = (): GoValue[] => {
      const vs = args.map((a) => this.evalArg(dot, a));
      if (final !== NO_FINAL) vs.push(final);
      return vs;
    };
    if (fn.name === 'and' || fn.name === 'or') {
      // Short-circuit like Go 1.18+: stop at the first false (and) / true (or) operand.
      const thunks: Array<() => GoValue> = args.map((a) => () => this.evalArg(dot, a));
      if (final !== NO_FINAL) thunks.push(() => final);
      if (thunks.length === 0) throw new RenderError(fn.pos, `wrong number of args for ${fn.name}: want at least 1 got 0`);
      let v: GoValue = NO_VALUE;
      for (const t of thunks) {
        v = t();
        if (isTrue(v) === (fn.name === 'or')) return v;
      }
      return v;
    }
    const impl = FUNCTIONS.get(fn.name);
    if (impl === undefined) throw new RenderError(fn.pos, `function "${fn.name}" not defined`);
    try {
      return impl(all());
    } catch (e) {
      if (e instanceof FunctionError) throw new RenderError(fn.pos, `error calling ${fn.name}: ${e.message}`);
      throw e;
    }
  }

  private evalArg(dot: GoValue, a: Operand): GoValue {
    switch (a.kind) {
      case 'dot':
        return dot;
      case 'field':
        return this.evalChain(dot, '', a.chain, a.pos);
      case 'variable':
        return this.evalChain(this.varValue(a.name, a.pos), a.name, a.chain, a.pos);
      case 'pipeline':
        return this.evalChain(this.evalPipeline(dot, a.pipe), '(...)', a.chain, a.pos);
      case 'function':
        return this.evalFunction(dot, a, [], NO_FINAL);
      case 'string':
        return a.value;
      case 'char':
        return a.value;
      case 'bool':
        return a.value;
      case 'nil':
        return null;
      case 'number':
        return parseNumber(a.text, a.pos);
    }
  }

  private evalChain(receiver: GoValue, prefix: string, chain: readonly string[], pos: number): GoValue {
    let v = receiver;
    let path = prefix;
    for (const name of chain) {
      if (v === NO_VALUE) {
        if (this.missingKey === 'error') throw new RenderError(pos, `nil data; no entry for key "${name}"`);
        return NO_VALUE;
      }
      if (v === null) throw new RenderError(pos, `nil pointer evaluating ${path || '.'}.${name}`);
      if (v instanceof GoStruct) {
        if (!v.fields.has(name)) throw new RenderError(pos, `can't evaluate field ${name} in type ${v.typeName}`);
        v = v.fields.get(name) as GoValue;
      } else if (v instanceof GoMap) {
        if (v.entries.has(name)) v = v.entries.get(name) as GoValue;
        else if (this.missingKey === 'error') throw new RenderError(pos, `map has no entry for key "${name}" (at ${path}.${name})`);
        else v = NO_VALUE;
      } else throw new RenderError(pos, `can't evaluate field ${name} in type ${goTypeName(v)}`);
      path += `.${name}`;
    }
    return v;
  }
}

function describeOperand(a: Operand): string {
  switch (a.kind) {
    case 'field':
      return `.${a.chain.join('.')}`;
    case 'variable':
      return a.name + a.chain.map((c) => `.${c}`).join('');
    case 'string':
      return JSON.stringify(a.value);
    case 'number':
      return a.text;
    default:
      return a.kind;
  }
}

function parseNumber(text: string, pos: number): GoValue {
  const t = text.replace(/_/g, '');
  const neg = t.startsWith('-');
  const body = t.replace(/^[+-]/, '');
  let n: number;
  if (/^0[xX]/.test(body)) n = parseInt(body.slice(2), 16);
  else if (/^0[bB]/.test(body)) n = parseInt(body.slice(2), 2);
  else if (/^0[oO]/.test(body)) n = parseInt(body.slice(2), 8);
  else if (/^0[0-7]+$/.test(body)) n = parseInt(body, 8);
  else if (/[.eE]/.test(body)) return new GoFloat(neg ? -Number(body) : Number(body));
  else n = Number(body);
  if (!Number.isSafeInteger(n)) throw new RenderError(pos, `number ${text} out of range`);
  return neg ? -n : n;
}

/** A parsed template; `render` may be called any number of times. */
export class Template {
  /** The template text as written. */
  readonly text: string;
  private readonly nodes: readonly Node[];

  private constructor(text: string, nodes: readonly Node[]) {
    this.text = text;
    this.nodes = nodes;
  }

  /** Parses Go text/template text; throws RegistrarError `template_parse` naming position and text. */
  static parse(text: string): Template {
    return new Template(text, parseNodes(text));
  }

  /** Executes the template on `data`; throws RegistrarError `template_render` naming the field or key. */
  render(data: TemplateData, options: RenderOptions = {}): string {
    try {
      return new Executor(data, options.missingKey ?? 'default').run(this.nodes);
    } catch (e) {
      if (e instanceof RenderError) {
        throw new RegistrarError('template_render', `template: ${e.message} at ${describePosition(this.text, e.pos)}`);
      }
      if (e instanceof LoopSignal) throw new RegistrarError('template_render', `template: {{${e.kind}}} outside {{range}}`);
      throw e;
    }
  }
}

export function parseTemplate(text: string): Template {
  return Template.parse(text);
}

/**
 * Renders a SPIFFE ID template the way the controller manager does: render, parse the result as
 * a SPIFFE ID, and require the expected trust domain. Every failure is `template_render`.
 */
export function renderSpiffeId(template: Template, data: TemplateData, trustDomain: string): SpiffeId {
  const rendered = template.render(data);
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(rendered);
  } catch (e) {
    throw new RegistrarError('template_render', `invalid SPIFFE ID ${JSON.stringify(rendered)}: ${(e as Error).message}`, { cause: e });
  }
  if (id.trustDomain.name !== trustDomain) {
    throw new RegistrarError(
      'template_render',
      `invalid SPIFFE ID ${JSON.stringify(rendered)}: expected trust domain ${JSON.stringify(trustDomain)} but got ${JSON.stringify(id.trustDomain.name)}`,
    );
  }
  return id;
}
