// The connection pool over the hosts of a connection string: libpq's multi-host connect
// (`host=a,b target_session_attrs=read-write`) for `pg`, which takes one host only.
//
// Written here because neither `pg` nor `pg-pool` chooses among hosts, and the npm packages that
// wrap them for read/write splitting do not follow libpq's rules. libpq tries the hosts in order
// (or shuffled with load_balance_hosts=random) on every new connection and keeps the first whose
// session fits target_session_attrs. Here the choice is made once per pool: the hosts are tried in
// order, the first that fits gets a pg.Pool, and every new physical connection of that pool is
// checked again (pg-pool's onConnect) so a host that changed roles is noticed. A connection error,
// a connection that no longer fits, or a write refused as read-only drops the pool; the next use
// tries the hosts from the start again (host names are resolved again by every connect), so after
// a PostgreSQL fail-over the servers find the promoted replica without a restart.
import pg from 'pg';
import { ZtwimError, asError, silentLogger, type Logger, type Random } from '@ztwim/core';
import { hostLabel, sslFallback, type PgConnectionConfig, type PgConnectionSpec, type TargetSessionAttrs } from './connection-string.ts';

/** What a host's session is, as target_session_attrs needs it. */
interface SessionState {
  readonly inRecovery: boolean;
  readonly readOnly: boolean;
}

type Rule = Exclude<TargetSessionAttrs, 'prefer-standby'>;

/** Whether a session of this state is one target_session_attrs accepts (libpq's checks). */
export function sessionFits(rule: Rule, s: SessionState): boolean {
  switch (rule) {
    case 'any':
      return true;
    case 'read-write':
      return !s.readOnly;
    case 'read-only':
      return s.readOnly;
    case 'primary':
      return !s.inRecovery;
    case 'standby':
      return s.inRecovery;
  }
}

const describeState = (s: SessionState): string => (s.inRecovery ? 'a standby (in recovery, read-only)' : s.readOnly ? 'read-only' : 'a read-write primary');

/** `pg_is_in_recovery()` and `transaction_read_only` in one round trip (libpq asks for the same). */
async function sessionState(c: pg.ClientBase): Promise<SessionState> {
  const r = await c.query<{ in_recovery: boolean; read_only: string }>(
    "SELECT pg_catalog.pg_is_in_recovery() AS in_recovery, pg_catalog.current_setting('transaction_read_only') AS read_only",
  );
  const row = r.rows[0];
  return { inRecovery: row?.in_recovery === true, readOnly: row?.read_only === 'on' };
}

/** Thrown (and mapped to Unavailable) when a host's session does not fit target_session_attrs. */
const notFitting = (host: string, rule: Rule, s: SessionState): ZtwimError =>
  new ZtwimError('ERR_UNAVAILABLE', `datastore: postgres unavailable: ${host} is ${describeState(s)}, not ${rule}`, { fields: { pgHostMismatch: true } });

export interface PgHostPoolOptions {
  readonly spec: PgConnectionSpec;
  /** pg.Pool settings other than the connection's (max, timeouts, lifetime). */
  readonly pool: Pick<pg.PoolConfig, 'max' | 'idleTimeoutMillis' | 'connectionTimeoutMillis' | 'maxLifetimeSeconds'>;
  /** Per-host connect timeout when the connection string has none. */
  readonly connectTimeoutMs: number;
  readonly random: Random;
  readonly logger?: Logger;
}

interface Chosen {
  readonly pool: pg.Pool;
  readonly host: string;
  readonly rule: Rule;
}

/** A client checked out of the pool of the chosen host; hand `pool` back to `dropped` when the client broke. */
export interface PgLease {
  readonly client: pg.PoolClient;
  readonly pool: pg.Pool;
}

export class PgHostPool {
  readonly #opts: PgHostPoolOptions;
  readonly #log: Logger;
  /** One host and target 'any': the pool never moves (pg reconnects to the same address by itself). */
  readonly #fixed: boolean;
  #chosen: Chosen | undefined;
  /** Dropped pools not ended yet (callers still wait on them; see released). */
  readonly #retiring = new Set<pg.Pool>();
  #choosing: Promise<Chosen> | undefined;
  #closed = false;

  constructor(opts: PgHostPoolOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? silentLogger();
    this.#fixed = opts.spec.hosts.length === 1 && opts.spec.targetSessionAttrs === 'any';
  }

  /** `host:port` of the host in use, or undefined while none is. */
  get host(): string | undefined {
    return this.#chosen?.host;
  }

  /**
   * A client on a host that fits. A pool whose connect fails with a connection error (its host
   * died) or a connection that does not fit is dropped and the hosts are tried again; so is a pool
   * another caller dropped meanwhile (pg-pool refuses a pool after end()). At most twice.
   */
  async connect(isConnectionError: (e: unknown) => boolean): Promise<PgLease> {
    for (let attempt = 0; ; attempt++) {
      const chosen = await this.#current();
      try {
        return { client: await chosen.pool.connect(), pool: chosen.pool };
      } catch (e) {
        const replaced = this.#chosen !== chosen && !this.#closed;
        const lost = !this.#fixed && (isConnectionError(e) || isHostMismatch(e));
        if (replaced) this.released(chosen.pool);
        if (attempt >= 2 || !(replaced || lost)) throw e;
        if (!replaced) this.dropped(chosen.pool, e);
      }
    }
  }

  /** A client of `pool` broke (connection lost, or its host refused a write as read-only): choose again on the next use. */
  dropped(pool: pg.Pool, cause: unknown): void {
    const chosen = this.#chosen;
    if (this.#fixed || chosen === undefined || chosen.pool !== pool) return;
    this.#chosen = undefined;
    this.#log.warn({ host: chosen.host, error: asError(cause).message }, 'datastore: Postgres host lost; choosing a host again');
    this.#retiring.add(pool);
    this.released(pool);
  }

  /**
   * A client of `pool` went back to it. A dropped pool is ended once no caller waits on it:
   * pg-pool never serves the callers queued on a pool that ends (they would wait for their
   * connect timeout), while a pool left open fails them at once on its dead host (or serves them
   * on a live one), and they choose again. Checked-out clients are closed on release after end.
   */
  released(pool: pg.Pool): void {
    if (!this.#retiring.has(pool) || pool.waitingCount > 0) return;
    this.#retiring.delete(pool);
    pool.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const chosen = this.#chosen;
    this.#chosen = undefined;
    await (this.#choosing?.catch(() => undefined) ?? Promise.resolve());
    const pools = [...this.#retiring, ...(chosen === undefined ? [] : [chosen.pool])];
    this.#retiring.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }

  #current(): Promise<Chosen> {
    if (this.#closed) return Promise.reject(new ZtwimError('ERR_DATASTORE', 'datastore: closed'));
    if (this.#chosen !== undefined) return Promise.resolve(this.#chosen);
    // Concurrent callers share one round over the hosts.
    this.#choosing ??= this.#choose().finally(() => {
      this.#choosing = undefined;
    });
    return this.#choosing;
  }

  /** The hosts in the order to try them: as given, or shuffled (load_balance_hosts=random). */
  #order(): PgConnectionConfig[] {
    const hosts = [...this.#opts.spec.hosts];
    if (this.#opts.spec.loadBalanceHosts === 'random') {
      const r = this.#opts.random(4 * hosts.length);
      for (let i = hosts.length - 1; i > 0; i--) {
        const j = Buffer.from(r).readUInt32BE(4 * i) % (i + 1);
        [hosts[i], hosts[j]] = [hosts[j] as PgConnectionConfig, hosts[i] as PgConnectionConfig];
      }
    }
    return hosts;
  }

  async #choose(): Promise<Chosen> {
    const target = this.#opts.spec.targetSessionAttrs;
    // prefer-standby: a standby if any host is one, else any host (libpq's two passes).
    const rules: Rule[] = target === 'prefer-standby' ? ['standby', 'any'] : [target];
    const failures: string[] = [];
    const order = this.#order();
    for (const rule of rules) {
      for (const host of order) {
        const label = hostLabel(host);
        let probed: { conn: PgConnectionConfig; state: SessionState | undefined };
        try {
          probed = await this.#probe(host, rule);
        } catch (e) {
          failures.push(`${label}: ${asError(e).message}`);
          continue;
        }
        if (probed.state !== undefined && !sessionFits(rule, probed.state)) {
          failures.push(`${label}: ${describeState(probed.state)}`);
          continue;
        }
        if (this.#closed) throw new ZtwimError('ERR_DATASTORE', 'datastore: closed');
        const chosen: Chosen = { pool: this.#newPool(probed.conn, label, rule), host: label, rule };
        this.#chosen = chosen;
        if (!this.#fixed) this.#log.info({ host: label, target_session_attrs: target }, 'datastore: Postgres host chosen');
        return chosen;
      }
    }
    const what = target === 'any' ? 'could be reached' : `accepts ${target} sessions`;
    throw new ZtwimError('ERR_UNAVAILABLE', `datastore: postgres unavailable: no host of the connection string ${what} (${failures.join('; ')})`);
  }

  /**
   * One connection to the host: with libpq's sslmode allow/prefer second attempt, and the
   * session's state when the rule needs it. Returns the connection config that worked.
   */
  async #probe(host: PgConnectionConfig, rule: Rule): Promise<{ conn: PgConnectionConfig; state: SessionState | undefined }> {
    const attempt = async (conn: PgConnectionConfig): Promise<SessionState | undefined> => {
      const c = new pg.Client({ ...clientConfig(conn), connectionTimeoutMillis: conn.connectionTimeoutMillis ?? this.#opts.connectTimeoutMs });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return rule === 'any' ? undefined : await sessionState(c);
      } finally {
        await c.end().catch(() => undefined);
      }
    };
    // A single host that is always used needs no probe unless sslmode may fall back (as before).
    if (this.#fixed && host.sslmode !== 'allow' && host.sslmode !== 'prefer') return { conn: host, state: undefined };
    try {
      return { conn: host, state: await attempt(host) };
    } catch (e) {
      const ssl = sslFallback(host, e);
      if (ssl === undefined) throw e;
      const conn = { ...host, ssl };
      return { conn, state: await attempt(conn) };
    }
  }

  #newPool(conn: PgConnectionConfig, label: string, rule: Rule): pg.Pool {
    const pool = new pg.Pool({
      ...clientConfig(conn),
      ...this.#opts.pool,
      ...(rule === 'any'
        ? {}
        : {
            // Every new connection is checked as libpq checks each: the host may have changed roles.
            onConnect: async (c: pg.ClientBase) => {
              const s = await sessionState(c);
              if (!sessionFits(rule, s)) throw notFitting(label, rule, s);
            },
          }),
    });
    // An idle client whose server went away emits 'error' on the pool; without a listener node
    // would crash. The pool drops the client and opens a new one on the next query.
    pool.on('error', (err) => {
      this.#log.warn({ host: label, err: err.message }, 'datastore: Idle postgres connection failed');
    });
    return pool;
  }
}

/** A session that does not fit target_session_attrs, or a write refused by a host that became a standby (SQLSTATE 25006). */
export function isHostMismatch(e: unknown): boolean {
  if (e instanceof ZtwimError) return e.fields['pgHostMismatch'] === true;
  return (e as { code?: unknown }).code === '25006';
}

/** pg's connection options (everything but the sslmode, already turned into `ssl`). */
export function clientConfig(conn: PgConnectionConfig): pg.ClientConfig {
  const { sslmode: _mode, ...rest } = conn;
  return rest;
}
