import { configError } from '../errors.ts';
import type { ConfigObject, ConfigValue } from './node.ts';

/**
 * A small schema walker for config documents: every problem is collected with its path and
 * line (`server.ca_ttl (line 7): must be a duration like "24h"`), unknown keys included, so
 * `validate` reports all problems at once rather than the first.
 */
export interface Problems {
  add(path: string, line: number, message: string): void;
  /** A problem with a command-line flag's value (it overrides the file, so the file is not blamed). */
  flag(name: string, value: string, message: string): void;
  readonly list: readonly string[];
  /** Something accepted but not acted on as the user may expect (a key not implemented, a deprecated name). */
  warn(path: string, line: number, message: string): void;
  /** `server.federation is not implemented yet; ... (server.conf line 12)`: logged at start, printed by validate. */
  readonly warnings: readonly string[];
}

export function problems(where: string): Problems {
  const list: string[] = [];
  const warnings: string[] = [];
  return {
    add: (path, line, message) => list.push(`${where}: ${path} (line ${line}): ${message}`),
    flag: (name, value, message) => list.push(`flag -${name} ${JSON.stringify(value)}: ${message}`),
    list,
    warn: (path, line, message) => warnings.push(`${path} ${message} (${where} line ${line})`),
    warnings,
  };
}

export function throwIfProblems(p: Problems): void {
  if (p.list.length > 0) {
    throw configError(p.list.length === 1 ? (p.list[0] as string) : `${p.list.length} problems:\n  ${p.list.join('\n  ')}`, {
      fields: { problems: p.list },
    });
  }
}

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/** Reads a config object, checking each key once; `done()` reports keys nobody asked for. */
export class Section {
  private readonly seen = new Set<string>();
  readonly obj: ConfigObject;
  readonly path: string;
  readonly p: Problems;
  constructor(obj: ConfigObject, path: string, p: Problems) {
    this.obj = obj;
    this.path = path;
    this.p = p;
  }

  private entry(key: string): ConfigValue | undefined {
    this.seen.add(key);
    const all = this.obj.entries.filter((e) => e.key === key && e.labels.length === 0);
    if (all.length > 1) this.p.add(join(this.path, key), all[1]?.line ?? 0, 'is set more than once');
    return all[0]?.value;
  }

  string(key: string): string | undefined {
    const v = this.entry(key);
    if (v === undefined || v.kind === 'null') return undefined;
    if (v.kind !== 'string') {
      this.p.add(join(this.path, key), v.line, 'must be a string');
      return undefined;
    }
    return v.value;
  }

  number(key: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
    const v = this.entry(key);
    if (v === undefined || v.kind === 'null') return undefined;
    let n: number | undefined;
    if (v.kind === 'number') n = v.value;
    else if (v.kind === 'string' && /^-?[0-9]+$/.test(v.value)) n = Number(v.value);
    if (n === undefined || (opts.integer === true && !Number.isInteger(n))) {
      this.p.add(join(this.path, key), v.line, opts.integer === true ? 'must be an integer' : 'must be a number');
      return undefined;
    }
    if ((opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
      this.p.add(join(this.path, key), v.line, `must be between ${opts.min ?? '-∞'} and ${opts.max ?? '∞'}`);
      return undefined;
    }
    return n;
  }

  bool(key: string): boolean | undefined {
    const v = this.entry(key);
    if (v === undefined || v.kind === 'null') return undefined;
    if (v.kind === 'bool') return v.value;
    if (v.kind === 'string' && (v.value === 'true' || v.value === 'false')) return v.value === 'true';
    this.p.add(join(this.path, key), v.line, 'must be true or false');
    return undefined;
  }

  /** A duration: Go syntax ("1h30m", "90s", "500ms") or a number of seconds. Returns milliseconds. */
  duration(key: string): number | undefined {
    const v = this.entry(key);
    if (v === undefined || v.kind === 'null') return undefined;
    const ms = v.kind === 'number' ? v.value * 1000 : v.kind === 'string' ? parseDuration(v.value) : undefined;
    if (ms === undefined || ms < 0) {
      this.p.add(join(this.path, key), v.line, 'must be a duration like "1h", "30m" or "90s"');
      return undefined;
    }
    return ms;
  }

  stringList(key: string): string[] | undefined {
    const v = this.entry(key);
    if (v === undefined || v.kind === 'null') return undefined;
    if (v.kind === 'string') return [v.value];
    if (v.kind !== 'list' || v.items.some((i) => i.kind !== 'string')) {
      this.p.add(join(this.path, key), v.line, 'must be a list of strings');
      return undefined;
    }
    return v.items.map((i) => (i as { value: string }).value);
  }

  /** A nested object (an HCL block without labels or a map). */
  section(key: string): Section | undefined {
    const v = this.entry(key);
    if (v === undefined || v.kind === 'null') return undefined;
    if (v.kind !== 'object') {
      this.p.add(join(this.path, key), v.line, 'must be a block/object');
      return undefined;
    }
    return new Section(v, join(this.path, key), this.p);
  }

  /**
   * Labelled blocks, e.g. `NodeAttestor "join_token" { }`, or the JSON/YAML forms HCL's JSON
   * syntax gives them: `NodeAttestor: { join_token: {...} }`, or a list of such objects,
   * `"NodeAttestor": [{ "join_token": {...} }]`, as SPIRE's Helm chart and Red Hat's operator
   * write server.conf and agent.conf.
   */
  labelled(key: string): Array<{ label: string; section: Section; line: number }> {
    this.seen.add(key);
    const out: Array<{ label: string; section: Section; line: number }> = [];
    const labelsOf = (obj: ConfigObject): void => {
      for (const inner of obj.entries) {
        if (inner.value.kind !== 'object') {
          this.p.add(`${join(this.path, key)}.${inner.key}`, inner.line, 'must be a block/object');
          continue;
        }
        out.push({ label: inner.key, section: new Section(inner.value, `${join(this.path, key)}.${inner.key}`, this.p), line: inner.line });
      }
    };
    for (const e of this.obj.entries) {
      if (e.key !== key) continue;
      if (e.labels.length === 1 && e.value.kind === 'object') {
        out.push({ label: e.labels[0] as string, section: new Section(e.value, `${join(this.path, key)}.${e.labels[0]}`, this.p), line: e.line });
      } else if (e.labels.length === 0 && e.value.kind === 'object') {
        labelsOf(e.value);
      } else if (e.labels.length === 0 && e.value.kind === 'list' && e.value.items.every((i) => i.kind === 'object')) {
        for (const item of e.value.items) labelsOf(item as ConfigObject);
      } else {
        this.p.add(join(this.path, key), e.line, 'must be a labelled block like `' + key + ' "name" { }`');
      }
    }
    return out;
  }

  /**
   * A key SPIRE knows and ztwim accepts without acting on it: warned about by name with what
   * the user will not get (`federation is not implemented yet; no bundle endpoint will be served`).
   */
  unimplemented(key: string, consequence: string): void {
    this.seen.add(key);
    if (this.has(key)) this.p.warn(join(this.path, key), this.lineOf(key), `is not implemented yet; ${consequence}`);
  }

  /** Marks a key as known without reading it. */
  ignore(key: string): void {
    this.seen.add(key);
  }

  /** The line of a key (of this section itself when absent). */
  lineOf(key: string): number {
    return this.obj.entries.find((e) => e.key === key)?.line ?? this.obj.line;
  }

  has(key: string): boolean {
    return this.obj.entries.some((e) => e.key === key);
  }

  /** Reports every key not read: unknown keys are errors. */
  done(): void {
    for (const e of this.obj.entries) {
      if (!this.seen.has(e.key)) this.p.add(join(this.path, e.key), e.line, 'unknown key');
    }
  }
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a Go-style duration ("1h30m", "5m", "90s", "250ms"; also "1d") into milliseconds. */
export function parseDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    consumed += m[0].length;
  }
  if (consumed !== s.length || s.length === 0) return undefined;
  return Math.round(total);
}
