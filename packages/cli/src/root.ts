import type { Command } from './command.ts';
import { versionCommand } from './commands/version.ts';

/**
 * The whole command tree of `ztwim`. Each group's module is imported only when that group runs
 * (LazyCommand), so a command loads just the code it needs; the summaries here are what
 * `ztwim --help` prints (a unit test checks they match the loaded commands).
 */
export function rootCommand(): Command {
  return {
    name: 'ztwim',
    summary: 'Zero Trust Workload Identity Manager: SPIFFE workload identity, SPIRE-compatible',
    subcommands: [
      {
        name: 'up',
        summary: 'Start server, agent and OIDC discovery provider locally (SQLite under ./.ztwim)',
        load: async () => (await import('./commands/up.ts')).upCommand,
      },
      {
        name: 'status',
        summary: 'Show whether ztwim up runs here: sockets, ports, agent, CA expiry, entries, your identity',
        load: async () => (await import('./commands/status.ts')).statusCommand,
      },
      {
        name: 'console',
        summary: 'Run the web console: server, agents, entries, bundles, federation, and why a workload has no identity',
        load: async () => (await import('./commands/console.ts')).consoleCommand,
      },
      {
        name: 'explain',
        summary: 'Explain which identity a workload gets from an agent, and which selectors the nearest entries lack',
        load: async () => (await import('./commands/explain.ts')).explainCommand,
      },
      {
        name: 'server',
        summary: 'Run the SPIRE-compatible server, or administer it over its API socket',
        load: async () => (await import('./commands/server/index.ts')).serverCommand,
      },
      {
        name: 'agent',
        summary: 'Run the agent, or use the Workload API it serves',
        load: async () => (await import('./commands/agent-group.ts')).agentCommand,
      },
      {
        name: 'api',
        summary: 'Talk to the SPIFFE Workload API (fetch and validate SVIDs)',
        load: async () => (await import('./commands/agent-api.ts')).apiCommand,
      },
      {
        name: 'oidc',
        summary: 'OIDC discovery provider: run it, validate its config, lint a live issuer',
        load: async () => (await import('./commands/oidc.ts')).oidcCommand,
      },
      {
        name: 'csi',
        summary: 'Run the SPIFFE CSI driver (csi.spiffe.io): the Workload API socket directory as a pod volume',
        load: async () => (await import('./commands/csi.ts')).csiCommand,
      },
      {
        name: 'operator',
        summary: 'Run the operator: five operator.openshift.io CRs reconciled into server, agent, CSI driver and OIDC provider',
        load: async () => (await import('./commands/operator.ts')).operatorCommand,
      },
      {
        name: 'registrar',
        summary: 'Run the workload registrar: ClusterSPIFFEID / ClusterStaticEntry CRs into registration entries',
        load: async () => (await import('./commands/registrar.ts')).registrarCommand,
      },
      versionCommand,
    ],
  };
}
