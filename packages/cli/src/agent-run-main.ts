// Entry point of `ztwim agent run` when bin/ztwim.js loads it from a V8 code cache, as
// server-run-main.ts is for `ztwim server run`: the same command as through main.ts, with only
// that command in its tree, bundled by scripts/build-cli.mjs into agent-run.cjs.
import type { Command } from './command.ts';
import { runMain } from './run-main.ts';

/**
 * `ztwim agent run` alone, under the names and summaries of the full tree (root.ts,
 * commands/agent-group.ts; command-table.test.ts checks they agree).
 */
export function agentRunRoot(): Command {
  return {
    name: 'ztwim',
    summary: 'Zero Trust Workload Identity Manager: SPIFFE workload identity, SPIRE-compatible',
    subcommands: [
      {
        name: 'agent',
        summary: 'Run the agent, or use the Workload API it serves',
        subcommands: [{ name: 'run', summary: 'Runs the agent', load: async () => (await import('./commands/agent-run.ts')).agentRunCommand }],
      },
    ],
  };
}

/** Runs `ztwim agent run`; `started` is called once the agent serves (Env.started). */
export function main(started?: () => void): void {
  void runMain(agentRunRoot(), started);
}
