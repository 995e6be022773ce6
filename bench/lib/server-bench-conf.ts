// The server.conf of the server benches (bench/server.ts, bench/first-answer-probe.ts): join_token,
// disk KeyManager, log level WARN, the same CA and SVID settings for SPIRE and ztwim.
import { join } from 'node:path';
import { serverConf } from '../../test/interop/lib/server-conf.ts';

export interface ServerBenchConf {
  readonly port: number;
  readonly socketPath: string;
  readonly trustDomain: string;
  readonly dataDir: string;
  /** DataStore plugin_data lines. */
  readonly dataStore: string;
}

export function serverBenchConf(o: ServerBenchConf): string {
  return serverConf({
    port: o.port,
    socketPath: o.socketPath,
    trustDomain: o.trustDomain,
    dataDir: o.dataDir,
    settings: { log_level: 'WARN', ca_key_type: 'ec-p256', ca_ttl: '24h', default_x509_svid_ttl: '1h', default_jwt_svid_ttl: '5m' },
    dataStorePluginData: o.dataStore,
    keyManager: { disk: join(o.dataDir, 'keys.json') },
  });
}

/** SQLite in `dataDir`, as plugin_data lines. */
export const sqliteDataStore = (dataDir: string): string =>
  `      database_type = "sqlite3"\n      connection_string = "${join(dataDir, 'datastore.sqlite3')}"`;
