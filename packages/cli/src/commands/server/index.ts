// `ztwim server ...`: SPIRE Server admin commands over the server's admin Unix socket, plus
// `run`/`validate`. Each subcommand's module is imported only when it runs (LazyCommand): the
// admin commands never load the server itself.
import type { Command, LazyCommand } from '../../command.ts';

/** Admin subcommands of `ztwim server`; `run` and `validate` are listed beside them below. */
export const serverAdminCommands: readonly LazyCommand[] = [
  { name: 'agent', summary: 'Manage attested agents', load: async () => (await import('./agent.ts')).agentCommand },
  { name: 'bundle', summary: 'Manage the trust bundle and federated bundles', load: async () => (await import('./bundle.ts')).bundleCommand },
  { name: 'entry', summary: 'Manage registration entries', load: async () => (await import('./entry.ts')).entryCommand },
  { name: 'federation', summary: 'Manage federation relationships', load: async () => (await import('./federation.ts')).federationCommand },
  { name: 'healthcheck', summary: 'Determines server health status', load: async () => (await import('./healthcheck.ts')).healthcheckCommand },
  { name: 'jwt', summary: 'Mint JWT-SVIDs', load: async () => (await import('./jwt.ts')).jwtCommand },
  {
    name: 'localauthority',
    summary: "Manage the server's local X.509 and JWT authorities",
    load: async () => (await import('./localauthority.ts')).localAuthorityCommand,
  },
  { name: 'token', summary: 'Manage join tokens', load: async () => (await import('./token.ts')).tokenCommand },
  { name: 'x509', summary: 'Mint X509-SVIDs', load: async () => (await import('./x509.ts')).x509Command },
];

const serverSubcommands: readonly LazyCommand[] = [
  { name: 'run', summary: 'Runs the server', load: async () => (await import('../server-run.ts')).serverRunCommand },
  { name: 'validate', summary: 'Validates a server configuration file', load: async () => (await import('../server-run.ts')).serverValidateCommand },
  ...serverAdminCommands,
];

export const serverCommand: Command = {
  name: 'server',
  summary: 'Run the SPIRE-compatible server, or administer it over its API socket',
  subcommands: serverSubcommands,
  // Usage errors as spire-server reports them (Go flag text, exit 1), so scripts behave the same.
  goCli: true,
};
