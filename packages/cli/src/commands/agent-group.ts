import type { Command } from '../command.ts';
import { apiCommand } from './agent-api.ts';
import { agentHealthcheckCommand } from './agent-healthcheck.ts';
import { agentRunCommand, agentValidateCommand } from './agent-run.ts';

/** `ztwim agent ...`: spire-agent compatible commands. */
export const agentCommand: Command = {
  name: 'agent',
  summary: 'Run the agent, or use the Workload API it serves',
  subcommands: [agentRunCommand, apiCommand, agentHealthcheckCommand, agentValidateCommand],
};
