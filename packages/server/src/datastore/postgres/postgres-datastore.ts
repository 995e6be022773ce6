import pg from 'pg';
import { ZtwimError, isZtwimError, silentLogger, unixSeconds, type Clock, type Logger, type Random, asError } from '@ztwim/core';
import type { Row, SqlConn, SqlDriver, SqlValue } from '../sql/driver.ts';
import { migrate } from '../sql/schema.ts';
import { SqlDataStore } from '../sql/sql-datastore.ts';
import { parsePgConnectionString, type PgConnectionSpec } from './connection-string.ts';
import { PgHostPool, isHostMismatch, type PgLease } from './host-pool.ts';

export interface PostgresDataStoreOptions {
  /**
   * libpq's URL (`postgres://user@host:5432/db?sslmode=...`) or keyword/value form (`dbname=db host=h sslmode=disable`);
   * several hosts with target_session_attrs as libpq (`host=a,b port=1,2 target_session_attrs=read-write`).
   */
  readonly connectionString: string;
  /**
   * SPIRE's ro_connection_string: a read replica for the reads that tolerate staleness (the full
   * read of the registration entries that builds the authorised-entry index). Same forms.
   */
  readonly roConnectionString?: string;
  /** Pool size (Go maxOpenConns); 0 or omitted = 100. */
  readonly maxOpenConns?: number;
  /** Connections kept idle after use (Go maxIdleConns); default 2; 0 = close after each use. */
  readonly maxIdleConns?: number;
  /** Recycle connections older than this (Go connMaxLifetime); 0 or omitted = forever. */
  readonly connMaxLifetimeMs?: number;
  /** How long to wait for a connection (default 10000 ms). */
  readonly connectTimeoutMs?: number;
  readonly clock: Clock;
  readonly random: Random;
  /** Refuse to migrate: the schema must already be at SCHEMA_VERSION (operator disableMigration). */
  readonly disableMigration?: boolean;
  readonly logger?: Logger;
}

const CONN_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'ENOENT',
  'EHOSTUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
]);

function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && (CONN_ERROR_CODES.has(code) || code.startsWith('08'))) return true;
  const msg = e instanceof Error ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(msg);
}

function mapError(e: unknown): ZtwimError {
  if (isZtwimError(e)) return e;
  const code = (e as { code?: unknown }).code;
  const msg = e instanceof Error ? e.message : String(e);
  if (code === '25006') {
    // A write on a host that became a standby (after a fail-over): the caller may retry elsewhere.
    return new ZtwimError('ERR_UNAVAILABLE', `datastore: postgres unavailable: ${msg}`, { cause: e });
  }
  if (isConnectionError(e)) {
    return new ZtwimError('ERR_UNAVAILABLE', `datastore: postgres unavailable: ${msg}`, { cause: e });
  }
  if (code === '23505') return new ZtwimError('ERR_ALREADY_EXISTS', `datastore: ${msg}`, { cause: e });
  return new ZtwimError('ERR_DATASTORE', `datastore: postgres: ${msg}`, { cause: e, fields: { pgCode: code } });
}

const placeholderCache = new Map<string, string>();
/** `?` → `$1, $2, …` (our SQL never has `?` inside literals). */
function toPg(sql: string): string {
  let out = placeholderCache.get(sql);
  if (out === undefined) {
    let i = 0;
    out = sql.replace(/\?/g, () => `$${++i}`);
    if (placeholderCache.size < 10_000) placeholderCache.set(sql, out);
  }
  return out;
}

function conn(client: pg.PoolClient): SqlConn {
  return {
    all: async (sql, params = []) => (await client.query<Row>(toPg(sql), params as SqlValue[])).rows,
    run: async (sql, params = []) => (await client.query(toPg(sql), params as SqlValue[])).rowCount ?? 0,
    exec: async (sql) => {
      await client.query(sql);
    },
    lock: async (key) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key]);
    },
    lockMany: async (keys) => {
      // Sorted and deduplicated, so concurrent batches take their locks in the same order.
      const sorted = [...new Set(keys)].sort();
      if (sorted.length === 0) return;
      await client.query('SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) WITH ORDINALITY AS t(k, i) ORDER BY i', [sorted]);
    },
  };
}

class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  private readonly hosts: PgHostPool;
  private readonly maxIdle: number;
  private readonly guarded = new WeakSet<pg.PoolClient>();

  constructor(opts: PostgresDataStoreOptions, spec: PgConnectionSpec, logger: Logger) {
    const max = opts.maxOpenConns !== undefined && opts.maxOpenConns > 0 ? Math.floor(opts.maxOpenConns) : 100;
    this.maxIdle = Math.max(0, Math.floor(opts.maxIdleConns ?? 2));
    const lifetime = opts.connMaxLifetimeMs ?? 0;
    const timeout = opts.connectTimeoutMs ?? spec.hosts[0]?.connectionTimeoutMillis ?? 10_000;
    this.hosts = new PgHostPool({
      spec,
      pool: {
        max,
        // Idle connections beyond maxIdleConns are closed on release (see withClient); the ones kept
        // are closed after a minute without use.
        idleTimeoutMillis: 60_000,
        connectionTimeoutMillis: timeout,
        ...(lifetime > 0 ? { maxLifetimeSeconds: Math.max(1, Math.ceil(lifetime / 1000)) } : {}),
      },
      connectTimeoutMs: timeout,
      random: opts.random,
      logger,
    });
  }

  /** `host:port` of the PostgreSQL host in use (undefined while none is). */
  get host(): string | undefined {
    return this.hosts.host;
  }

  /** Chooses the host (connects once): fails with ERR_UNAVAILABLE naming every host's failure. */
  async open(): Promise<void> {
    const lease = await this.hosts.connect(isConnectionError).catch((e: unknown) => {
      throw mapError(e);
    });
    lease.client.release();
  }

  private async withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let lease: PgLease;
    try {
      lease = await this.hosts.connect(isConnectionError);
    } catch (e) {
      throw mapError(e);
    }
    const client = lease.client;
    if (!this.guarded.has(client)) {
      this.guarded.add(client);
      // Errors while checked out also reject the running query; this only prevents a crash.
      client.on('error', () => undefined);
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (e) {
      if (isConnectionError(e) || isHostMismatch(e)) {
        broken = asError(e);
        // The host died or is no longer a primary: the next use chooses a host again.
        this.hosts.dropped(lease.pool, e);
      }
      throw mapError(e);
    } finally {
      // Destroy rather than keep idle when the connection is broken or enough are idle already.
      client.release(broken ?? (lease.pool.idleCount >= this.maxIdle ? true : undefined));
      this.hosts.released(lease.pool);
    }
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]> {
    return this.withClient((c) => conn(c).all(sql, params));
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.withClient((c) => conn(c).run(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.withClient((c) => conn(c).exec(sql));
  }

  lock(key: string): Promise<void> {
    return this.withClient((c) => conn(c).lock(key));
  }

  lockMany(keys: readonly string[]): Promise<void> {
    return this.withClient((c) => conn(c).lockMany(keys));
  }

  tx<T>(fn: (conn: SqlConn) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      await client.query('BEGIN');
      try {
        const r = await fn(conn(client));
        await client.query('COMMIT');
        return r;
      } catch (e) {
        try {
          await client.query('ROLLBACK');
        } catch {
          // connection gone; the server rolls back
        }
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    await this.hosts.close();
  }
}

/** The DataStore on PostgreSQL (pg Pool). */
export class PostgresDataStore extends SqlDataStore {
  readonly #primary: PostgresDriver;
  readonly #replica: PostgresDriver | undefined;

  private constructor(driver: PostgresDriver, replica: PostgresDriver | undefined, opts: PostgresDataStoreOptions) {
    super(driver, { ...opts, ...(replica === undefined ? {} : { staleReads: replica }) });
    this.#primary = driver;
    this.#replica = replica;
  }

  /** The PostgreSQL hosts in use (`host:port`): the primary's, and the read replica's when one is configured. */
  hosts(): { primary: string | undefined; readReplica?: string | undefined } {
    return { primary: this.#primary.host, ...(this.#replica === undefined ? {} : { readReplica: this.#replica.host }) };
  }

  /** Connects and migrates; fails with ERR_UNAVAILABLE when the server cannot be reached. */
  static async open(opts: PostgresDataStoreOptions): Promise<PostgresDataStore> {
    if (typeof opts.connectionString !== 'string' || opts.connectionString === '') {
      throw new ZtwimError('ERR_CONFIG', 'datastore: postgres connection string is empty');
    }
    const logger = opts.logger ?? silentLogger();
    const driver = new PostgresDriver(opts, parsePgConnectionString(opts.connectionString), logger);
    let replica: PostgresDriver | undefined;
    try {
      await driver.open();
      await migrate(driver, unixSeconds(opts.clock.now()), 'postgres database', opts.disableMigration === true);
      if (opts.roConnectionString !== undefined && opts.roConnectionString !== '') {
        // Not connected here: a replica that is away at start only sends its reads to the primary.
        replica = new PostgresDriver(opts, parsePgConnectionString(opts.roConnectionString), logger);
      }
    } catch (e) {
      await driver.close().catch(() => undefined);
      throw mapError(e);
    }
    return new PostgresDataStore(driver, replica, opts);
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#replica?.close();
  }
}
