import type { Command } from '../command.ts';

/**
 * `ztwim agent ...`: spire-agent compatible commands. `run`/`validate` (the agent itself) and the
 * Workload API commands live in separate modules, each imported only when it runs.
 */
export const agentCommand: Command = {
  name: 'agent',
  summary: 'Run the agent, or use the Workload API it serves',
  subcommands: [
    { name: 'run', summary: 'Runs the agent', load: async () => (await import('./agent-run.ts')).agentRunCommand },
    { name: 'api', summary: 'Talk to the SPIFFE Workload API (fetch and validate SVIDs)', load: async () => (await import('./agent-api.ts')).apiCommand },
    {
      name: 'healthcheck',
      summary: 'Determines agent health status',
      load: async () => (await import('./agent-healthcheck.ts')).agentHealthcheckCommand,
    },
    { name: 'validate', summary: 'Validates an agent configuration file', load: async () => (await import('./agent-run.ts')).agentValidateCommand },
  ],
};
