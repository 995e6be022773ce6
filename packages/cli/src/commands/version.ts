import { ZTWIM_VERSION } from '@ztwim/core';
import type { Command } from '../command.ts';
import { println } from '../env.ts';

export { ZTWIM_VERSION };

export const versionCommand: Command = {
  name: 'version',
  summary: 'Print the ztwim version',
  async run(_flags, env) {
    println(env.stdout, ZTWIM_VERSION);
  },
};
