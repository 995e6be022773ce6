import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ZtwimError, isZtwimError, unixSeconds, type Clock, type Random } from '@ztwim/core';
import type { Row, SqlConn, SqlDriver, SqlValue } from '../sql/driver.ts';
import { migrate } from '../sql/schema.ts';
import { SqlDataStore } from '../sql/sql-datastore.ts';

export const DEFAULT_SQLITE_PATH = './.ztwim/server/datastore.sqlite3';

let addonOption: { nativeBinding?: string } | undefined;

/**
 * better-sqlite3's compiled addon, named to it directly: without `nativeBinding` it asks the
 * `bindings` package, which reads a stack trace and probes a dozen paths (about 5 ms of CPU of every
 * server start, bench/results/server-start.md). A Release build, else a Debug one (the places
 * better-sqlite3's own build writes to); where neither is, better-sqlite3 looks as it always has
 * (from `server run`'s CommonJS bundle, which holds better-sqlite3's JavaScript, that lookup
 * starts at the bundle's directory and fails naming the paths it tried).
 */
function betterSqliteAddon(): { nativeBinding?: string } {
  if (addonOption === undefined) {
    addonOption = {};
    const req = createRequire(import.meta.url);
    for (const build of ['Release', 'Debug']) {
      try {
        addonOption = { nativeBinding: req.resolve(`better-sqlite3/build/${build}/better_sqlite3.node`) };
        break;
      } catch {
        // not built there
      }
    }
  }
  return addonOption;
}

export interface SqliteDataStoreOptions {
  /** Database file; parent directories are created. Callers pass DEFAULT_SQLITE_PATH by default. */
  readonly path: string;
  readonly clock: Clock;
  readonly random: Random;
  /** Refuse to migrate: the schema must already be at SCHEMA_VERSION (operator disableMigration). */
  readonly disableMigration?: boolean;
  /** How long a writer waits for another process's lock before failing (default 5000 ms). */
  readonly busyTimeoutMs?: number;
}

type Statement = Database.Statement<unknown[], Row>;

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

function mapError(e: unknown, path: string): ZtwimError {
  if (isZtwimError(e)) return e;
  const code = (e as { code?: unknown }).code;
  const msg = e instanceof Error ? e.message : String(e);
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new ZtwimError('ERR_ALREADY_EXISTS', `datastore: ${msg}`, { cause: e });
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new ZtwimError('ERR_DATASTORE', `datastore: ${path} is not a usable SQLite database: ${msg}`, { cause: e });
  }
  return new ZtwimError('ERR_DATASTORE', `datastore: sqlite: ${msg}`, { cause: e, fields: { path, sqliteCode: code } });
}

/** Refuses an existing non-empty file that does not start with the SQLite header, without touching it. */
function checkHeader(path: string): void {
  if (!existsSync(path)) return;
  const st = statSync(path);
  if (!st.isFile()) throw new ZtwimError('ERR_DATASTORE', `datastore: ${path} is not a regular file`);
  if (st.size === 0) return;
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(16);
    const n = readSync(fd, head, 0, 16, 0);
    if (n < 16 || !head.equals(SQLITE_MAGIC)) {
      throw new ZtwimError('ERR_DATASTORE', `datastore: ${path} is not a SQLite database`, { fields: { path } });
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * One queue per database file in this process: two stores on one file (tests, a peer) must not
 * interleave transactions, or the second BEGIN IMMEDIATE would busy-wait synchronously on a lock
 * that the first can only release once the event loop runs again.
 */
const fileQueues = new Map<string, { queue: Promise<unknown>; users: number }>();

function queueFor(path: string): { queue: Promise<unknown>; users: number } {
  const key = path === ':memory:' ? `:memory:${Math.random()}` : resolve(path);
  let q = fileQueues.get(key);
  if (q === undefined) fileQueues.set(key, (q = { queue: Promise.resolve(), users: 0 }));
  q.users++;
  return q;
}

/**
 * better-sqlite3 is synchronous, and the generic store is async; the driver serialises every
 * call (and whole transactions) through one promise chain so that no statement runs in the middle
 * of another caller's transaction on the shared connection.
 */
class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly path: string;
  private readonly stmts = new Map<string, Statement>();
  private readonly shared: { queue: Promise<unknown>; users: number };
  private readonly inner: SqlConn;

  constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
    this.shared = queueFor(path);
    this.inner = {
      all: (sql, params) => this.guard(() => this.allSync(sql, params)),
      run: (sql, params) => this.guard(() => this.runSync(sql, params)),
      exec: (sql) => this.guard(() => void this.db.exec(sql)),
      lock: () => Promise.resolve(),
      lockMany: () => Promise.resolve(),
    };
  }

  private stmt(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare<unknown[], Row>(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  private allSync(sql: string, params: readonly SqlValue[] = []): Row[] {
    return this.stmt(sql).all(...params);
  }

  private runSync(sql: string, params: readonly SqlValue[] = []): number {
    return this.stmt(sql).run(...params).changes;
  }

  private guard<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(mapError(e, this.path));
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.shared.queue.then(fn);
    this.shared.queue = p.catch(() => undefined);
    return p;
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]> {
    return this.exclusive(() => this.inner.all(sql, params));
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.exclusive(() => this.inner.run(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.exclusive(() => this.inner.exec(sql));
  }

  lock(): Promise<void> {
    return Promise.resolve();
  }

  lockMany(): Promise<void> {
    return Promise.resolve();
  }

  tx<T>(fn: (conn: SqlConn) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      // IMMEDIATE takes the write lock up front, so a second process waits (busy_timeout)
      // instead of failing when it upgrades a read transaction.
      await this.inner.exec('BEGIN IMMEDIATE');
      try {
        const r = await fn(this.inner);
        this.db.exec('COMMIT');
        return r;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw mapError(e, this.path);
      }
    });
  }

  close(): Promise<void> {
    return this.exclusive(async () => {
      this.stmts.clear();
      this.db.close();
      if (--this.shared.users === 0) {
        for (const [k, v] of fileQueues) if (v === this.shared) fileQueues.delete(k);
      }
    });
  }

  /** PRAGMA integrity_check result ('ok' when healthy). */
  integrityCheck(): Promise<string> {
    return this.exclusive(async () => String(this.db.pragma('integrity_check', { simple: true })));
  }
}

/** The DataStore on one SQLite file (WAL mode). */
export class SqliteDataStore extends SqlDataStore {
  readonly path: string;
  private readonly sqlite: SqliteDriver;

  private constructor(driver: SqliteDriver, path: string, opts: SqliteDataStoreOptions) {
    super(driver, opts);
    this.sqlite = driver;
    this.path = path;
  }

  /** Opens (creating if needed) and migrates the database. */
  static async open(opts: SqliteDataStoreOptions): Promise<SqliteDataStore> {
    const path = opts.path;
    if (typeof path !== 'string' || path === '') throw new ZtwimError('ERR_CONFIG', 'datastore: sqlite path is empty');
    checkHeader(path);
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      db = new Database(path, betterSqliteAddon());
      // WAL: readers do not block the writer. synchronous=FULL: every COMMIT fsyncs the WAL, so an
      // acknowledged write survives not only kill -9 (NORMAL already does: the WAL frames are in the
      // OS page cache) but also an OS crash or power loss, which NORMAL does not guarantee. Entry and
      // CA journal writes are rare enough that the fsync per commit is affordable; batches amortise it.
      const mode = String(db.pragma('journal_mode = WAL', { simple: true }));
      if (path !== ':memory:' && mode.toLowerCase() !== 'wal') {
        throw new ZtwimError('ERR_DATASTORE', `datastore: ${path}: cannot enable WAL journal mode (got ${mode})`);
      }
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // 32 MiB page cache (default 2 MiB): keeps the entry indexes hot at 100k+ entries.
      db.pragma('cache_size = -32768');
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
      const driver = new SqliteDriver(db, path);
      await migrate(driver, unixSeconds(opts.clock.now()), path, opts.disableMigration === true);
      return new SqliteDataStore(driver, path, opts);
    } catch (e) {
      try {
        db?.close();
      } catch {
        // already failing
      }
      throw mapError(e, path);
    }
  }

  /** Runs PRAGMA integrity_check; 'ok' when the file is healthy. */
  integrityCheck(): Promise<string> {
    return this.sqlite.integrityCheck();
  }
}
