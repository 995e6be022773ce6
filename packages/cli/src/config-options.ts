// How `run` / `validate` (server, agent, oidc) read their config file: SPIRE's -expandEnv flag.
import type { LoadConfigOptions } from '@ztwim/core';
import type { Env } from './env.ts';
import type { FlagSpec, Flags } from './flags.ts';

export const EXPAND_ENV_FLAG: FlagSpec = { kind: 'bool', usage: 'Expand environment variables in SPIRE config file' };

/** With -expandEnv, `$VAR` / `${VAR}` in the file become the command's environment values. */
export function configLoadOptions(f: Flags, env: Env): LoadConfigOptions {
  return f.bool('expandEnv') ? { expandEnv: env.vars } : {};
}
