import pg from 'pg';
import { ZtwimError, isZtwimError, silentLogger, unixSeconds, type Clock, type Logger, type Random, asError } from '@ztwim/core';
import type { Row, SqlConn, SqlDriver, SqlValue } from '../sql/driver.ts';
import { migrate } from '../sql/schema.ts';
import { SqlDataStore } from '../sql/sql-datastore.ts';
import { parsePgConnectionString, sslFallback, type PgConnectionConfig } from './connection-string.ts';

export interface PostgresDataStoreOptions {
  /** libpq's URL (`postgres://user@host:5432/db?sslmode=...`) or keyword/value form (`dbname=db host=h sslmode=disable`). */
  readonly connectionString: string;
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
  private readonly pool: pg.Pool;
  private readonly maxIdle: number;
  private readonly guarded = new WeakSet<pg.PoolClient>();
  private readonly logger: Logger;

  constructor(opts: PostgresDataStoreOptions, conn: PgConnectionConfig) {
    const max = opts.maxOpenConns !== undefined && opts.maxOpenConns > 0 ? Math.floor(opts.maxOpenConns) : 100;
    this.maxIdle = Math.max(0, Math.floor(opts.maxIdleConns ?? 2));
    this.logger = opts.logger ?? silentLogger();
    const lifetime = opts.connMaxLifetimeMs ?? 0;
    this.pool = new pg.Pool({
      ...poolConnection(conn),
      max,
      // Idle connections beyond maxIdleConns are closed on release (see withClient); the ones kept
      // are closed after a minute without use.
      idleTimeoutMillis: 60_000,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? conn.connectionTimeoutMillis ?? 10_000,
      ...(lifetime > 0 ? { maxLifetimeSeconds: Math.max(1, Math.ceil(lifetime / 1000)) } : {}),
    });
    // An idle client whose server went away emits 'error' on the pool; without a listener node
    // would crash. The pool drops the client and opens a new one on the next query.
    this.pool.on('error', (err) => {
      this.logger.warn({ err: err.message }, 'datastore: idle postgres connection failed');
    });
  }

  private async withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw mapError(e);
    }
    if (!this.guarded.has(client)) {
      this.guarded.add(client);
      // Errors while checked out also reject the running query; this only prevents a crash.
      client.on('error', () => undefined);
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (e) {
      if (isConnectionError(e)) broken = asError(e);
      throw mapError(e);
    } finally {
      // Destroy rather than keep idle when the connection is broken or enough are idle already.
      client.release(broken ?? (this.pool.idleCount >= this.maxIdle ? true : undefined));
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
    await this.pool.end();
  }
}

/** The DataStore on PostgreSQL (pg Pool). */
export class PostgresDataStore extends SqlDataStore {
  private constructor(driver: PostgresDriver, opts: PostgresDataStoreOptions) {
    super(driver, opts);
  }

  /** Connects and migrates; fails with ERR_UNAVAILABLE when the server cannot be reached. */
  static async open(opts: PostgresDataStoreOptions): Promise<PostgresDataStore> {
    if (typeof opts.connectionString !== 'string' || opts.connectionString === '') {
      throw new ZtwimError('ERR_CONFIG', 'datastore: postgres connection string is empty');
    }
    const conn = await withSslFallback(parsePgConnectionString(opts.connectionString), opts.connectTimeoutMs ?? 10_000);
    const driver = new PostgresDriver(opts, conn);
    try {
      await migrate(driver, unixSeconds(opts.clock.now()), 'postgres database', opts.disableMigration === true);
    } catch (e) {
      await driver.close().catch(() => undefined);
      throw mapError(e);
    }
    return new PostgresDataStore(driver, opts);
  }
}

/** The pool's connection options (everything but the sslmode, already turned into `ssl`). */
function poolConnection(conn: PgConnectionConfig): pg.PoolConfig {
  const { sslmode: _mode, ...rest } = conn;
  return rest;
}

/** libpq's second attempt for sslmode allow/prefer, decided once with a probe connection. */
async function withSslFallback(conn: PgConnectionConfig, timeoutMs: number): Promise<PgConnectionConfig> {
  if (conn.sslmode !== 'allow' && conn.sslmode !== 'prefer') return conn;
  const probe = new pg.Client({ ...poolConnection(conn), connectionTimeoutMillis: conn.connectionTimeoutMillis ?? timeoutMs });
  try {
    await probe.connect();
    return conn;
  } catch (e) {
    const ssl = sslFallback(conn, e);
    return ssl === undefined ? conn : { ...conn, ssl };
  } finally {
    await probe.end().catch(() => undefined);
  }
}
