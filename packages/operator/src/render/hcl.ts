// Writes SPIRE-style HCL (v1) text: attributes, blocks, labelled plugin blocks. The rendered
// server.conf and agent.conf are HCL rather than the JSON ZTWIM writes because both readers take
// HCL (SPIRE's and ztwim's own; ztwim's parser does not read JSON as HCL). No library writes
// HCL v1 from a tree in JavaScript, and the subset needed is this small.

export type HclExpr = string | number | boolean | readonly HclExpr[] | { readonly [k: string]: HclExpr };

export interface HclAttr {
  readonly attr: string;
  readonly value: HclExpr;
}
export interface HclBlock {
  readonly block: string;
  readonly labels?: readonly string[];
  readonly body: HclBody;
}
export type HclBody = ReadonlyArray<HclAttr | HclBlock>;

export const attr = (name: string, value: HclExpr | undefined): HclAttr[] => (value === undefined ? [] : [{ attr: name, value }]);
export const block = (name: string, body: HclBody, labels: readonly string[] = []): HclBlock => ({ block: name, labels, body });
/** `Type "name" { plugin_data { ... } }`. */
export const plugin = (type: string, name: string, data: HclBody): HclBlock => block(type, [block('plugin_data', data)], [name]);

const quote = (s: string): string => JSON.stringify(s);
const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function expr(v: HclExpr, indent: string): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${(v as readonly HclExpr[]).map((x) => expr(x, indent)).join(', ')}]`;
  const entries = Object.entries(v as { readonly [k: string]: HclExpr });
  if (entries.length === 0) return '{}';
  const inner = indent + '  ';
  return `{\n${entries.map(([k, x]) => `${inner}${quote(k)} = ${expr(x, inner)}`).join('\n')}\n${indent}}`;
}

function body(b: HclBody, indent: string): string {
  const lines: string[] = [];
  for (const item of b) {
    if ('attr' in item) lines.push(`${indent}${item.attr} = ${expr(item.value, indent)}`);
    else {
      const labels = (item.labels ?? []).map((l) => ` ${quote(l)}`).join('');
      const name = IDENT.test(item.block) ? item.block : quote(item.block);
      if (item.body.length === 0) lines.push(`${indent}${name}${labels} {\n${indent}}`);
      else lines.push(`${indent}${name}${labels} {\n${body(item.body, indent + '  ')}\n${indent}}`);
    }
  }
  return lines.join('\n');
}

/** The HCL text of a body, with a trailing newline. */
export function toHcl(b: HclBody): string {
  return body(b, '') + '\n';
}
