import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import type * as YamlLib from 'yaml';
import type { LineCounter, Node as YamlNode } from 'yaml';
import { configError } from '../errors.ts';
import { HclSyntaxError, parseHcl } from './hcl.ts';
import type { ConfigEntry, ConfigObject, ConfigValue } from './node.ts';

export type ConfigFormat = 'hcl' | 'yaml' | 'json';

export function formatOf(path: string): ConfigFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  if (ext === '.json') return 'json';
  return 'hcl';
}

/**
 * Go's os.ExpandEnv as SPIRE applies it with -expandEnv: `${NAME}` and `$NAME` become the
 * variable's value (empty when unset); a `$` not followed by a name stays as it is.
 */
export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(/\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g, (_m, braced: string | undefined, bare: string | undefined) => env[braced ?? bare ?? ''] ?? '');
}

let yamlLib: typeof YamlLib | undefined;

/**
 * Loads the YAML parser. Most configs are HCL (SPIRE's format), and the parser is 268 KB of code,
 * so it is not imported with this module: a command reading a config file awaits this first when
 * the file is YAML (in the CLI bundle `yaml` is then a chunk of its own, loaded only then).
 */
export async function loadYamlSupport(): Promise<void> {
  // yaml is CommonJS: Node's import() gives its named exports, the CLI bundle's chunk only `default`.
  const m = await import('yaml');
  yamlLib ??= (typeof m.LineCounter === 'function' ? m : m.default) as typeof YamlLib;
}

/** The YAML parser; loaded here, synchronously, by a caller that did not await loadYamlSupport(). */
function yaml(): typeof YamlLib {
  yamlLib ??= createRequire(import.meta.url)('yaml') as typeof YamlLib;
  return yamlLib;
}

export interface LoadConfigOptions {
  /** Overrides the format chosen by the file extension. */
  readonly format?: ConfigFormat;
  /** Expand `$VAR` / `${VAR}` from these variables before parsing (SPIRE's -expandEnv). */
  readonly expandEnv?: Readonly<Record<string, string | undefined>>;
}

/** Reads and parses a config file (HCL by default; .yaml/.yml/.json by extension). */
export function loadConfigFile(path: string, options: LoadConfigOptions = {}): ConfigObject {
  let src: string;
  try {
    src = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unknown error';
    throw configError(`cannot read config file ${path}: ${code}`, { cause: e });
  }
  if (options.expandEnv !== undefined) src = expandEnv(src, options.expandEnv);
  return parseConfigText(src, options.format ?? formatOf(path), path);
}

/** Parses config text; `where` names the source in error messages. */
export function parseConfigText(src: string, format: ConfigFormat, where = 'config'): ConfigObject {
  // HCL's parser reads a document that opens with `{` as JSON (SPIRE's .conf files may be JSON).
  if (format === 'hcl' && !src.trimStart().startsWith('{')) {
    try {
      return parseHcl(src);
    } catch (e) {
      if (e instanceof HclSyntaxError) throw configError(`${where}: ${e.message}`, { cause: e });
      throw e;
    }
  }
  const { LineCounter, parseDocument } = yaml();
  const lc = new LineCounter();
  const doc = parseDocument(src, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err !== undefined) {
    const line = lc.linePos(err.pos[0]).line;
    throw configError(`${where}: line ${line}: ${err.message.split('\n')[0] ?? 'syntax error'}`);
  }
  if (doc.contents === null) return { kind: 'object', entries: [], line: 1 };
  const v = fromYaml(doc.contents, lc, where);
  if (v.kind !== 'object') throw configError(`${where}: line ${v.line}: the document must be a mapping`);
  return v;
}

function fromYaml(n: YamlNode, lc: LineCounter, where: string): ConfigValue {
  const { isMap, isScalar, isSeq } = yaml();
  const line = n.range ? lc.linePos(n.range[0]).line : 1;
  if (isMap(n)) {
    const entries: ConfigEntry[] = [];
    for (const pair of n.items) {
      const k = pair.key;
      if (!isScalar(k) || (typeof k.value !== 'string' && typeof k.value !== 'number')) {
        throw configError(`${where}: line ${line}: keys must be strings`);
      }
      const kline = k.range ? lc.linePos(k.range[0]).line : line;
      const value: ConfigValue = pair.value === null || pair.value === undefined ? { kind: 'null', line: kline } : fromYaml(pair.value as YamlNode, lc, where);
      entries.push({ key: String(k.value), labels: [], value, line: kline });
    }
    return { kind: 'object', entries, line };
  }
  if (isSeq(n)) {
    return { kind: 'list', items: n.items.map((i) => fromYaml(i as YamlNode, lc, where)), line };
  }
  if (isScalar(n)) {
    const v = n.value;
    if (typeof v === 'string') return { kind: 'string', value: v, line };
    if (typeof v === 'number') return { kind: 'number', value: v, line };
    if (typeof v === 'boolean') return { kind: 'bool', value: v, line };
    if (v === null) return { kind: 'null', line };
  }
  throw configError(`${where}: line ${line}: unsupported value`);
}
