import type { Command } from '../command.ts';
import { agentHealthcheckCommand, apiCommand } from './agent-api.ts';

/** `ztwim agent ...`: spire-agent compatible commands (run is added when the agent is wired). */
export const agentCommand: Command = {
  name: 'agent',
  summary: 'Run the agent, or use the Workload API it serves',
  subcommands: [apiCommand, agentHealthcheckCommand],
};
