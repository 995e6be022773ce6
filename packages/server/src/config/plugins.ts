// The plugins a server config sets up, named as SPIRE's config names them (plugin type and name),
// with one line each on how, for the ServerInfo API and the console's server page. Nothing secret:
// a PostgreSQL connection string shows its hosts and database, never its user or password.
import { parsePgConnectionString, hostLabel } from '../datastore/postgres/connection-string.ts';
import type { ServerConfig } from './server-config.ts';

export interface ConfiguredPlugin {
  /** SPIRE's plugin type: DataStore, KeyManager, NodeAttestor, Notifier. */
  readonly type: string;
  /** The plugin's name in the config. */
  readonly name: string;
  readonly detail: string;
}

/** The hosts and database of a connection string; what cannot be parsed is not shown. */
function postgresWhere(connectionString: string): string {
  try {
    const spec = parsePgConnectionString(connectionString);
    const db = spec.hosts[0]?.database;
    return `${spec.hosts.map(hostLabel).join(', ')}${db === undefined ? '' : `/${db}`}`;
  } catch {
    return 'connection string not readable';
  }
}

export function configuredPlugins(cfg: Pick<ServerConfig, 'dataStore' | 'keyManager' | 'nodeAttestors' | 'notifiers'>): ConfiguredPlugin[] {
  const ds = cfg.dataStore;
  const plugins: ConfiguredPlugin[] = [
    {
      type: 'DataStore',
      name: 'sql',
      detail:
        ds.type === 'sqlite3'
          ? `sqlite3 ${ds.path}`
          : `postgres ${postgresWhere(ds.connectionString)}${ds.roConnectionString === undefined ? '' : `; read replica ${postgresWhere(ds.roConnectionString)}`}`,
    },
    { type: 'KeyManager', name: cfg.keyManager.type, detail: cfg.keyManager.type === 'disk' ? cfg.keyManager.path : 'keys in memory, new on every start' },
  ];
  const na = cfg.nodeAttestors;
  if (na.joinToken) plugins.push({ type: 'NodeAttestor', name: 'join_token', detail: 'single-use join tokens' });
  if (na.x509pop !== undefined) plugins.push({ type: 'NodeAttestor', name: 'x509pop', detail: `mode ${na.x509pop.mode}` });
  if (na.k8sPsat !== undefined) {
    plugins.push({ type: 'NodeAttestor', name: 'k8s_psat', detail: `clusters ${na.k8sPsat.clusters.map((c) => c.name).join(', ')}` });
  }
  const k8sBundle = cfg.notifiers?.k8sBundle;
  if (k8sBundle !== undefined) {
    plugins.push({ type: 'Notifier', name: 'k8sbundle', detail: `ConfigMap ${k8sBundle.namespace}/${k8sBundle.configMap} key ${k8sBundle.configMapKey}` });
  }
  return plugins;
}
