// What `ztwim up` prints once it is up: where everything is served and commands that work as
// written, from another shell (socket flags included when they are not the defaults).
import { DEFAULT_AGENT_SOCKET } from '../commands/agent-api.ts';
import { DEFAULT_SERVER_SOCKET_PATH } from '../commands/server/client.ts';
import type { UpState } from './state-file.ts';

/** A word as a POSIX shell reads it back (quoted only when it needs to be). */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface BannerInput extends UpState {
  readonly userId: string;
  readonly uid: number;
  /** Whether `ztwim status` needs `-dataDir` (up was not run with the default ./.ztwim). */
  readonly nonDefaultDataDir: boolean;
  /** The console's login tokens (admin, read-only), when it runs. */
  readonly consoleTokens?: { readonly admin: string; readonly viewer: string };
  /** Said after the console URL (e.g. that its default port was in use). */
  readonly consoleNote?: string;
}

export function upBanner(b: BannerInput): string[] {
  const agentSock = b.socketPath === DEFAULT_AGENT_SOCKET ? '' : ` -socketPath ${shellWord(b.socketPath)}`;
  const serverSock = b.serverSocketPath === DEFAULT_SERVER_SOCKET_PATH ? '' : ` -socketPath ${shellWord(b.serverSocketPath)}`;
  const lines = [
    `ztwim is up: trust domain ${b.trustDomain}, state in ${b.dataDir}`,
    `  server API (admin):   ${b.serverSocketPath}`,
    `  server API (agents):  127.0.0.1:${b.serverPort}`,
    `  Workload API:         ${b.socketPath}`,
  ];
  if (b.oidcIssuer !== undefined) lines.push(`  OIDC discovery:       ${b.oidcIssuer}/.well-known/openid-configuration`);
  if (b.serverMetricsUrl !== undefined) lines.push(`  server metrics:       ${b.serverMetricsUrl}`);
  if (b.agentMetricsUrl !== undefined) lines.push(`  agent metrics:        ${b.agentMetricsUrl}`);
  if (b.consoleUrl !== undefined && b.consoleTokens !== undefined) {
    lines.push(`  web console:          ${b.consoleUrl}#token=${b.consoleTokens.admin}${b.consoleNote ?? ''}`);
    lines.push(`                        (read-only login token: ${b.consoleTokens.viewer})`);
  }
  lines.push(
    `  agent node alias:     ${b.nodeAlias} (kept when the agent is attested again)`,
    `  your identity:        ${b.userId} (unix uid ${b.uid})`,
    '',
    'Try, from another shell:',
    `  npx ztwim api fetch x509${agentSock}`,
    `  npx ztwim api fetch jwt -audience test${agentSock}`,
    `  npx ztwim server entry show${serverSock}`,
    `  npx ztwim status${b.nonDefaultDataDir ? ` -dataDir ${shellWord(b.dataDir)}` : ''}`,
    "Register a workload under this machine (SPIRE's getting-started command):",
    `  npx ztwim server entry create${serverSock} -parentID ${b.nodeAlias} -spiffeID ${b.nodeAlias.replace(/\/host$/, '/myservice')} -selector unix:uid:$(id -u)`,
    'Press Ctrl-C to stop.',
  );
  return lines;
}
