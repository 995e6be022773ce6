import type { Command } from '../command.ts';
import { println } from '../env.ts';

export const ZTWIM_VERSION = '0.1.0';

export const versionCommand: Command = {
  name: 'version',
  summary: 'Print the ztwim version',
  async run(_flags, env) {
    println(env.stdout, ZTWIM_VERSION);
  },
};
