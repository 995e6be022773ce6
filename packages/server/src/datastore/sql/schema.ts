import { ZtwimError } from '@ztwim/core';
import type { Dialect, SqlDriver } from './driver.ts';

/** Code version written next to each applied migration. */
export const CODE_VERSION = '0.1.0';

interface Migration {
  readonly version: number;
  readonly sql: (d: Dialect) => string;
}

/**
 * Schema migrations, applied in order inside one transaction. Never edit a released migration:
 * append a new one. Column types are chosen to behave the same on SQLite and Postgres (booleans
 * are 0/1 integers, times are Unix seconds in BIGINT).
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: (d) => {
      const pk = d === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY';
      const blob = d === 'sqlite' ? 'BLOB' : 'BYTEA';
      return `
CREATE TABLE registered_entries (
  seq ${pk},
  entry_id TEXT NOT NULL UNIQUE,
  spiffe_id TEXT NOT NULL,
  parent_id TEXT NOT NULL,
  selector_key TEXT NOT NULL,
  x509_svid_ttl INTEGER NOT NULL,
  jwt_svid_ttl INTEGER NOT NULL,
  admin INTEGER NOT NULL,
  downstream INTEGER NOT NULL,
  expires_at BIGINT NOT NULL,
  revision_number BIGINT NOT NULL,
  store_svid INTEGER NOT NULL,
  hint TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  selectors TEXT NOT NULL,
  dns_names TEXT NOT NULL,
  federates_with TEXT NOT NULL
);
CREATE INDEX idx_entries_spiffe_parent_key ON registered_entries (spiffe_id, parent_id, selector_key);
CREATE INDEX idx_entries_parent ON registered_entries (parent_id);
CREATE INDEX idx_entries_expires ON registered_entries (expires_at);
CREATE INDEX idx_entries_hint ON registered_entries (hint);
CREATE TABLE entry_selectors (
  entry_seq BIGINT NOT NULL REFERENCES registered_entries (seq) ON DELETE CASCADE,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (entry_seq, type, value)
);
CREATE INDEX idx_entry_selectors_tv ON entry_selectors (type, value);
CREATE TABLE entry_federates (
  entry_seq BIGINT NOT NULL REFERENCES registered_entries (seq) ON DELETE CASCADE,
  trust_domain TEXT NOT NULL,
  PRIMARY KEY (entry_seq, trust_domain)
);
CREATE INDEX idx_entry_federates_td ON entry_federates (trust_domain);
CREATE TABLE entry_events (
  event_id ${pk},
  entry_id TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX idx_entry_events_created ON entry_events (created_at);
CREATE TABLE attested_nodes (
  seq ${pk},
  spiffe_id TEXT NOT NULL UNIQUE,
  data_type TEXT NOT NULL,
  serial_number TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  new_serial_number TEXT NOT NULL,
  new_expires_at BIGINT NOT NULL,
  can_reattest INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX idx_nodes_expires ON attested_nodes (expires_at);
CREATE TABLE node_selectors (
  spiffe_id TEXT NOT NULL,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (spiffe_id, type, value)
);
CREATE INDEX idx_node_selectors_tv ON node_selectors (type, value);
CREATE TABLE join_tokens (
  token TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE TABLE bundles (
  seq ${pk},
  trust_domain TEXT NOT NULL UNIQUE,
  data ${blob} NOT NULL,
  sequence_number BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE ca_journals (
  name TEXT PRIMARY KEY,
  data ${blob} NOT NULL,
  updated_at BIGINT NOT NULL
);`;
    },
  },
  {
    // Federation relationships (SPIRE's federated_trust_domains). A fetched bundle's
    // spiffe_sequence lives in the bundle document, so bundles need no new column.
    version: 2,
    sql: (d) => {
      const pk = d === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY';
      return `
CREATE TABLE federation_relationships (
  seq ${pk},
  trust_domain TEXT NOT NULL UNIQUE,
  bundle_endpoint_url TEXT NOT NULL,
  bundle_endpoint_profile TEXT NOT NULL,
  endpoint_spiffe_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);`;
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema up to SCHEMA_VERSION in one transaction (Postgres: under an advisory lock so
 * concurrent servers migrate once). A database whose version is newer than this code is refused;
 * with disableMigration (operator `datastore.disableMigration`) the version must already match.
 */
export async function migrate(driver: SqlDriver, nowSeconds: number, where: string, disableMigration = false): Promise<number> {
  return driver.tx(async (c) => {
    await c.lock('ztwim-schema-migration');
    await c.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, code_version TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const rows = await c.all('SELECT MAX(version) AS v FROM migrations');
    const current = Number(rows[0]?.['v'] ?? 0);
    if (current > SCHEMA_VERSION) {
      throw new ZtwimError(
        'ERR_DATASTORE',
        `datastore: ${where} has schema version ${current}, newer than this ztwim supports (${SCHEMA_VERSION}); upgrade ztwim`,
        { fields: { schemaVersion: current, supported: SCHEMA_VERSION } },
      );
    }
    if (disableMigration && current !== SCHEMA_VERSION) {
      throw new ZtwimError(
        'ERR_DATASTORE',
        `datastore: ${where} has schema version ${current}, this ztwim needs ${SCHEMA_VERSION} and migrations are disabled`,
        { fields: { schemaVersion: current, supported: SCHEMA_VERSION } },
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await c.exec(m.sql(driver.dialect));
      await c.run('INSERT INTO migrations (version, code_version, applied_at) VALUES (?, ?, ?)', [m.version, CODE_VERSION, nowSeconds]);
    }
    return SCHEMA_VERSION;
  });
}
