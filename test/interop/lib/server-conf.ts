// The server.conf the interop helpers write, for the real SPIRE server (spire-admin.ts,
// spire-server.ts) and for ztwim's (ztwim-server.ts): one template, each helper its settings.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './net.ts';
import { makeTmpDir, type TmpDir } from './tmp.ts';

export interface ServerConfOptions {
  readonly port: number;
  readonly socketPath: string;
  readonly trustDomain: string;
  readonly dataDir: string;
  /** Settings inside `server { }` after the addresses (`key = "value"` lines). */
  readonly settings?: Readonly<Record<string, string>>;
  /** Free text added inside `server { }` (a test's own lines). */
  readonly extraServerConfig?: string;
  /** `plugin_data` lines of the sql DataStore; default: sqlite3 in `<dataDir>/datastore.sqlite3`. */
  readonly dataStorePluginData?: string;
  /** KeyManager plugin: memory (default), or disk with its plugin_data `keys_path`. */
  readonly keyManager?: { readonly disk: string };
  /** More plugin blocks inside `plugins { }`. */
  readonly extraPlugins?: string;
  /** Blocks after `plugins { }` (e.g. telemetry). */
  readonly trailer?: string;
}

export function serverConf(o: ServerConfOptions): string {
  const settings = Object.entries(o.settings ?? {})
    .map(([k, v]) => `  ${k} = "${v}"\n`)
    .join('');
  const dataStore = o.dataStorePluginData ?? `      database_type = "sqlite3"\n      connection_string = "${join(o.dataDir, 'datastore.sqlite3')}"`;
  const keyManager =
    o.keyManager === undefined
      ? '  KeyManager "memory" {\n    plugin_data {}\n  }'
      : `  KeyManager "disk" {\n    plugin_data {\n      keys_path = "${o.keyManager.disk}"\n    }\n  }`;
  return `server {
  bind_address = "127.0.0.1"
  bind_port = "${o.port}"
  socket_path = "${o.socketPath}"
  trust_domain = "${o.trustDomain}"
  data_dir = "${o.dataDir}"
${settings}${o.extraServerConfig ?? ''}
}

plugins {
  DataStore "sql" {
    plugin_data {
${dataStore}
    }
  }
${keyManager}
  NodeAttestor "join_token" {
    plugin_data {}
  }
${o.extraPlugins ?? ''}
}
${o.trailer ?? ''}`;
}

/** A server's working place: a temp dir, its data dir (created), admin socket path and a free port. */
export interface ServerWorkspace {
  readonly dir: TmpDir;
  readonly dataDir: string;
  readonly socketPath: string;
  readonly port: number;
}

export async function serverWorkspace(prefix: string, names: { data?: string; socket?: string } = {}): Promise<ServerWorkspace> {
  const dir = makeTmpDir(prefix);
  const dataDir = join(dir.path, names.data ?? 'data');
  mkdirSync(dataDir, { recursive: true });
  return { dir, dataDir, socketPath: join(dir.path, names.socket ?? 'api.sock'), port: await freePort() };
}

export interface AgentConfOptions {
  /** `server_address`; default 127.0.0.1 (a name with several A records for HA). */
  readonly serverAddress?: string;
  readonly serverPort: number;
  readonly trustDomain: string;
  readonly dataDir: string;
  readonly socketPath: string;
  /** `experimental.sync_interval`; default 500ms; null leaves it out (the agent's own 5 s default). */
  readonly syncInterval?: string | null;
  readonly logLevel?: string;
  /** KeyManager plugin: disk in the data dir (default) or memory. */
  readonly keyManager?: 'disk' | 'memory';
  readonly joinToken?: string;
  readonly trustBundlePath?: string;
  /** The NodeAttestor block; default join_token. */
  readonly nodeAttestor?: string;
  /** Inside the unix WorkloadAttestor's `plugin_data { }`. */
  readonly unixPluginData?: string;
  /** More plugin blocks inside `plugins { }` (e.g. a k8s WorkloadAttestor). */
  readonly pluginsExtra?: string;
}

/**
 * The agent.conf the tests and benches write for ztwim's agent and for spire-agent: join_token
 * attestation (or `nodeAttestor`), disk KeyManager in the data dir (or memory), unix workload attestor.
 */
export function agentConf(o: AgentConfOptions): string {
  const opt = (key: string, v: string | undefined): string => (v === undefined ? '' : `  ${key} = "${v}"\n`);
  const sync = o.syncInterval === null ? '' : `  experimental { sync_interval = "${o.syncInterval ?? '500ms'}" }\n`;
  const keyManager = o.keyManager === 'memory' ? 'KeyManager "memory" { plugin_data {} }' : `KeyManager "disk" { plugin_data { directory = "${o.dataDir}" } }`;
  return `agent {
  server_address = "${o.serverAddress ?? '127.0.0.1'}"
  server_port = ${o.serverPort}
  trust_domain = "${o.trustDomain}"
  data_dir = "${o.dataDir}"
  socket_path = "${o.socketPath}"
  log_level = "${o.logLevel ?? 'warn'}"
${opt('join_token', o.joinToken)}${opt('trust_bundle_path', o.trustBundlePath)}${sync}}
plugins {
  ${o.nodeAttestor ?? 'NodeAttestor "join_token" { plugin_data {} }'}
  ${keyManager}
  WorkloadAttestor "unix" { plugin_data { ${o.unixPluginData ?? ''} } }
${o.pluginsExtra ?? ''}}
`;
}
