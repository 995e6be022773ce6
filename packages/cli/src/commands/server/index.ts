// `ztwim server ...`: SPIRE Server admin commands over the server's admin Unix socket.
import type { Command } from '../../command.ts';
import { agentCommand } from './agent.ts';
import { bundleCommand } from './bundle.ts';
import { entryCommand } from './entry.ts';
import { healthcheckCommand } from './healthcheck.ts';
import { jwtCommand } from './jwt.ts';
import { tokenCommand } from './token.ts';
import { x509Command } from './x509.ts';
import { serverRunCommand, serverValidateCommand } from '../server-run.ts';

/** Admin subcommands of `ztwim server` (the lead adds `run` and `validate`). */
export const serverAdminCommands: readonly Command[] = [
  agentCommand,
  bundleCommand,
  entryCommand,
  healthcheckCommand,
  jwtCommand,
  tokenCommand,
  x509Command,
];

const serverSubcommands: readonly Command[] = [serverRunCommand, serverValidateCommand, ...serverAdminCommands];

export const serverCommand: Command = {
  name: 'server',
  summary: 'Run the SPIRE-compatible server, or administer it over its API socket',
  subcommands: serverSubcommands,
  // Usage errors as spire-server reports them (Go flag text, exit 1), so scripts behave the same.
  goCli: true,
};
