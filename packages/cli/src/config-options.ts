// How `run` / `validate` (server, agent, oidc) read their config file: SPIRE's -expandEnv flag.
import { formatOf, loadYamlSupport, type LoadConfigOptions } from '@ztwim/core';
import { println, type Env } from './env.ts';
import type { FlagSpec, Flags } from './flags.ts';

export const EXPAND_ENV_FLAG: FlagSpec = { kind: 'bool', usage: 'Expand environment variables in SPIRE config file' };

/** `validate`: the config's warnings (keys accepted but not implemented, deprecated names) on stderr, then the verdict. */
export function printValidated(env: Env, warnings: readonly string[] | undefined): void {
  for (const w of warnings ?? []) println(env.stderr, `warning: ${w}`);
  println(env.stdout, 'Configuration is valid.');
}

/**
 * How to read the `-config` file: with -expandEnv, `$VAR` / `${VAR}` in the file become the
 * command's environment values. A YAML file's parser is loaded here (only then: loadYamlSupport).
 */
export async function configLoadOptions(f: Flags, env: Env): Promise<LoadConfigOptions> {
  if (formatOf(f.string('config')) === 'yaml') await loadYamlSupport();
  return f.bool('expandEnv') ? { expandEnv: env.vars } : {};
}
