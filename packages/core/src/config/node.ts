/**
 * A parsed configuration document that keeps source positions, whatever the syntax
 * (HCL, YAML or JSON), so validation errors can name the key and the line.
 */
export type ConfigValue =
  | { readonly kind: 'string'; readonly value: string; readonly line: number }
  | { readonly kind: 'number'; readonly value: number; readonly line: number }
  | { readonly kind: 'bool'; readonly value: boolean; readonly line: number }
  | { readonly kind: 'null'; readonly line: number }
  | { readonly kind: 'list'; readonly items: readonly ConfigValue[]; readonly line: number }
  | { readonly kind: 'object'; readonly entries: readonly ConfigEntry[]; readonly line: number };

export interface ConfigEntry {
  readonly key: string;
  /** HCL block labels (`NodeAttestor "join_token" { }` → key NodeAttestor, labels ["join_token"]). */
  readonly labels: readonly string[];
  readonly value: ConfigValue;
  readonly line: number;
}

export type ConfigObject = Extract<ConfigValue, { kind: 'object' }>;

/** Converts to plain JS values (for debugging and tests). */
export function toPlain(v: ConfigValue): unknown {
  switch (v.kind) {
    case 'string':
    case 'number':
    case 'bool':
      return v.value;
    case 'null':
      return null;
    case 'list':
      return v.items.map(toPlain);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const e of v.entries) {
        let target = out;
        let key = e.key;
        for (const label of e.labels) {
          const next = (target[key] ??= {}) as Record<string, unknown>;
          target = next;
          key = label;
        }
        target[key] = toPlain(e.value);
      }
      return out;
    }
  }
}
