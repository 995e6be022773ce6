import type { Command } from './command.ts';
import { serverCommand } from './commands/server/index.ts';
import { agentCommand } from './commands/agent-group.ts';
import { apiCommand } from './commands/agent-api.ts';
import { upCommand } from './commands/up.ts';
import { statusCommand } from './commands/status.ts';
import { oidcCommand } from './commands/oidc.ts';
import { versionCommand } from './commands/version.ts';

/** The whole command tree of `ztwim`. */
export function rootCommand(): Command {
  return {
    name: 'ztwim',
    summary: 'Zero Trust Workload Identity Manager: SPIFFE workload identity, SPIRE-compatible',
    subcommands: [upCommand, statusCommand, serverCommand, agentCommand, apiCommand, oidcCommand, versionCommand],
  };
}
