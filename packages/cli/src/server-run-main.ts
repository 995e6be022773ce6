// Entry point of `ztwim server run` when bin/ztwim.js loads it from a V8 code cache: the same
// command as `ztwim server run` through main.ts, with only that command in its tree, so
// scripts/build-cli.mjs can bundle it (and nothing else) into one CommonJS file (server-run.cjs).
// Why that file exists: see bin/ztwim.js.
import type { Command } from './command.ts';
import { runMain } from './run-main.ts';

/**
 * `ztwim server run` alone, under the names, summaries and Go-CLI behaviour of the full tree
 * (root.ts, commands/server/index.ts; server-run-main.test.ts checks they agree). Not imported
 * from there: the bundle would then hold every command those tables load.
 */
export function serverRunRoot(): Command {
  return {
    name: 'ztwim',
    summary: 'Zero Trust Workload Identity Manager: SPIFFE workload identity, SPIRE-compatible',
    subcommands: [
      {
        name: 'server',
        summary: 'Run the SPIRE-compatible server, or administer it over its API socket',
        goCli: true,
        // Loaded when it runs, as in the full tree: run-main.ts sets the global Headers first.
        subcommands: [{ name: 'run', summary: 'Runs the server', load: async () => (await import('./commands/server-run.ts')).serverRunCommand }],
      },
    ],
  };
}

/** Runs `ztwim server run`; `started` is called once the server is healthy (Env.started). */
export function main(started?: () => void): void {
  void runMain(serverRunRoot(), started);
}
