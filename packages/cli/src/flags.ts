/**
 * Go `flag`-compatible parsing, so that spire-server/spire-agent command lines work as
 * written: `-flag value`, `-flag=value`, `--flag value`, boolean `-flag` / `-flag=false`,
 * repeatable flags, and parsing stops at the first non-flag argument or `--`.
 * (node:util parseArgs treats `-spiffeID` as a cluster of short options, hence this file.)
 */
export type FlagKind = 'string' | 'bool' | 'int' | 'duration' | 'list';

export interface FlagSpec {
  readonly kind: FlagKind;
  readonly usage: string;
  readonly default?: string | number | boolean;
  /** Placeholder shown in help, e.g. "ID". */
  readonly arg?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export type FlagValue = string | number | boolean | string[];

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class HelpRequested extends Error {
  constructor() {
    super('help requested');
    this.name = 'HelpRequested';
  }
}

export interface ParsedFlags {
  readonly values: ReadonlyMap<string, FlagValue>;
  /** Flags given on the command line (as opposed to defaults). */
  readonly set: ReadonlySet<string>;
  readonly args: readonly string[];
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Go time.ParseDuration into seconds (fractional). */
export function parseGoDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const re = /([0-9]+(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    consumed += m[0].length;
  }
  return consumed === s.length && s.length > 0 ? total : undefined;
}

function convert(name: string, spec: FlagSpec, raw: string): FlagValue {
  switch (spec.kind) {
    case 'bool':
      if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(raw)) return true;
      if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(raw)) return false;
      throw new UsageError(`invalid boolean value "${raw}" for -${name}: parse error`);
    case 'int': {
      if (!/^[+-]?[0-9]+$/.test(raw)) throw new UsageError(`invalid value "${raw}" for flag -${name}: parse error`);
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) throw new UsageError(`invalid value "${raw}" for flag -${name}: value out of range`);
      return n;
    }
    case 'duration': {
      const secs = parseGoDuration(raw);
      if (secs === undefined) throw new UsageError(`invalid value "${raw}" for flag -${name}: parse error`);
      return secs;
    }
    default:
      return raw;
  }
}

export function parseFlags(specs: FlagSpecs, argv: readonly string[]): ParsedFlags {
  const values = new Map<string, FlagValue>();
  const set = new Set<string>();
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.kind === 'list') values.set(name, []);
    else if (spec.default !== undefined) values.set(name, spec.default);
    else if (spec.kind === 'bool') values.set(name, false);
  }
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      i++;
      break;
    }
    if (a.length < 2 || a[0] !== '-') break;
    let body = a.slice(a[1] === '-' ? 2 : 1);
    if (body === '' || body[0] === '-' || body[0] === '=') throw new UsageError(`bad flag syntax: ${a}`);
    let inline: string | undefined;
    const eq = body.indexOf('=');
    if (eq >= 0) {
      inline = body.slice(eq + 1);
      body = body.slice(0, eq);
    }
    if (body === 'h' || body === 'help') throw new HelpRequested();
    const spec = specs[body];
    if (spec === undefined) throw new UsageError(`flag provided but not defined: -${body}`);
    let raw: string;
    if (spec.kind === 'bool') {
      raw = inline ?? 'true';
    } else if (inline !== undefined) {
      raw = inline;
    } else {
      const nextArg = argv[i + 1];
      if (nextArg === undefined) throw new UsageError(`flag needs an argument: -${body}`);
      raw = nextArg;
      i++;
    }
    const v = convert(body, spec, raw);
    if (spec.kind === 'list') (values.get(body) as string[]).push(v as string);
    else values.set(body, v);
    set.add(body);
  }
  return { values, set, args: argv.slice(i) };
}

/**
 * Go's `flag.PrintDefaults` for these flags, as spire-server/spire-agent print after a flag error:
 * sorted by name, `  -name type` then `    \t usage (default …)`. Types as Go names them: none for
 * bool, `value` for repeatable and custom flags (`arg: 'value'`, whose default is not shown).
 */
export function goFlagDefaults(specs: FlagSpecs): string {
  const lines: string[] = [];
  for (const name of Object.keys(specs).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const spec = specs[name] as FlagSpec;
    const custom = spec.kind === 'list' || spec.arg === 'value';
    const type = spec.kind === 'bool' ? '' : custom ? 'value' : spec.kind;
    let line = `  -${name}${type === '' ? '' : ` ${type}`}`;
    line += line.length <= 4 ? '\t' : '\n    \t';
    line += spec.usage.replaceAll('\n', '\n    \t');
    const d = spec.default;
    if (!custom && d !== undefined && d !== '' && d !== false && d !== 0) {
      line +=
        spec.kind === 'string'
          ? ` (default ${goQuoteString(String(d))})`
          : spec.kind === 'duration'
            ? ` (default ${goDurationString(Number(d))})`
            : ` (default ${String(d)})`;
    }
    lines.push(line);
  }
  return lines.join('\n');
}

/** Go's %q for the printable ASCII strings flag defaults are. */
function goQuoteString(s: string): string {
  return JSON.stringify(s);
}

/** Go time.Duration.String() for a whole number of seconds (flag defaults). */
function goDurationString(seconds: number): string {
  if (seconds === 0) return '0s';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const sec = seconds % 60;
  return h > 0 ? `${h}h${m}m${sec}s` : m > 0 ? `${m}m${sec}s` : `${sec}s`;
}

export function flagsUsage(specs: FlagSpecs): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(specs).sort(([a], [b]) => a.localeCompare(b))) {
    const arg = spec.kind === 'bool' ? '' : ` ${spec.arg ?? spec.kind}`;
    lines.push(`  -${name}${arg}`);
    const def = spec.default !== undefined && spec.default !== '' && spec.default !== false ? ` (default ${JSON.stringify(spec.default)})` : '';
    const rep = spec.kind === 'list' ? ' (repeatable)' : '';
    lines.push(`    \t${spec.usage}${def}${rep}`);
  }
  return lines.join('\n');
}

/** Typed accessors over parsed flags. */
export class Flags {
  private readonly p: ParsedFlags;
  constructor(p: ParsedFlags) {
    this.p = p;
  }
  get args(): readonly string[] {
    return this.p.args;
  }
  isSet(name: string): boolean {
    return this.p.set.has(name);
  }
  string(name: string): string {
    const v = this.p.values.get(name);
    return typeof v === 'string' ? v : '';
  }
  optString(name: string): string | undefined {
    const v = this.p.values.get(name);
    return typeof v === 'string' && (v !== '' || this.p.set.has(name)) ? v : undefined;
  }
  bool(name: string): boolean {
    return this.p.values.get(name) === true;
  }
  int(name: string): number {
    const v = this.p.values.get(name);
    return typeof v === 'number' ? v : 0;
  }
  /** Durations are returned in seconds. */
  duration(name: string): number {
    return this.int(name);
  }
  list(name: string): string[] {
    const v = this.p.values.get(name);
    return Array.isArray(v) ? [...v] : [];
  }
}
