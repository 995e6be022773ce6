export { parseHcl, HclSyntaxError } from './hcl.ts';
export { loadConfigFile, loadYamlSupport, parseConfigText, formatOf, expandEnv } from './load.ts';
export type { ConfigFormat, LoadConfigOptions } from './load.ts';
export { Section, problems, throwIfProblems, parseDuration } from './schema.ts';
export type { Problems } from './schema.ts';
export { toPlain } from './node.ts';
export type { ConfigValue, ConfigEntry, ConfigObject } from './node.ts';
