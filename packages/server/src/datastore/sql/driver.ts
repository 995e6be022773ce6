/**
 * The small SQL surface the generic store runs on. SQL text uses `?` placeholders and a portable
 * subset (RETURNING, ON CONFLICT, row counts); the Postgres driver rewrites placeholders to $n.
 */
export type Dialect = 'sqlite' | 'postgres';
/** Arrays are for Postgres `= ANY(?)` only. */
export type SqlValue = string | number | bigint | null | Buffer | readonly number[];
export type Row = Record<string, unknown>;

export interface SqlConn {
  /** Rows of a SELECT or of a statement with RETURNING. */
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Runs a statement; resolves to the number of rows changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** Serialises writers on key until the transaction ends (Postgres advisory lock; SQLite: no-op, writers are serial). */
  lock(key: string): Promise<void>;
  /** lock() for several keys at once, in a stable order (no deadlock between two batches). */
  lockMany(keys: readonly string[]): Promise<void>;
}

export interface SqlDriver extends SqlConn {
  readonly dialect: Dialect;
  /** Runs fn in one write transaction; commits when it resolves, rolls back when it rejects. */
  tx<T>(fn: (conn: SqlConn) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
