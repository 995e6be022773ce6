// A PostgreSQL primary with a streaming replica, from Debian's PostgreSQL binaries, for the
// fail-over tests and benches: `initdb` the primary, `pg_basebackup -R` the replica, both on
// 127.0.0.1 ports of the caller's choosing; then kill the primary's postmaster with SIGKILL and
// promote the replica (`pg_ctl promote`), as an operator or Patroni would.
//
// PostgreSQL refuses to run as root, so as root every command runs as the `postgres` user. The
// clusters trust local connections (test use only).
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, appendFileSync, statSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ZtwimError } from '@ztwim/core';
import { eventually } from './eventually.ts';

const run = promisify(execFile);

export interface PgPairOptions {
  /** A directory of its own (created; emptied first): the two data directories, their logs and sockets. */
  readonly dir: string;
  readonly primaryPort: number;
  readonly replicaPort: number;
  /**
   * Synchronous replication (`synchronous_standby_names = '*'`, `synchronous_commit = on`): a commit
   * is acknowledged only once the replica has it, so a killed primary loses no acknowledged write.
   * Default true. With false (asynchronous), writes acknowledged in the last moments before the
   * kill may not have reached the replica and are lost by the fail-over.
   */
  readonly synchronous?: boolean;
  /** Database created on the primary before the replica is copied (default `ztwim`). */
  readonly database?: string;
}

export interface PgPair {
  /** `postgres://postgres@127.0.0.1:<primaryPort>/<db>` */
  readonly primaryUrl: string;
  /** `postgres://postgres@127.0.0.1:<replicaPort>/<db>` */
  readonly replicaUrl: string;
  /** libpq's URL form over both, the primary first: `postgresql://postgres@127.0.0.1:P1,127.0.0.1:P2/<db>?target_session_attrs=read-write&sslmode=disable` */
  readonly multiHostConnectionString: string;
  /** SIGKILL to the primary's postmaster; resolves once its port refuses connections. */
  killPrimary(): Promise<void>;
  /** `pg_ctl promote -w`: the replica leaves recovery and accepts writes. */
  promoteReplica(): Promise<void>;
  /** Stops both (immediate) and removes the directory. */
  stop(): Promise<void>;
}

const fail = (message: string, cause?: unknown): never => {
  throw new ZtwimError('ERR_INTERNAL', `pg-replica: ${message}`, cause === undefined ? {} : { cause });
};

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(a) - Number(b));
  const v = versions.pop();
  if (v === undefined) return fail(`no PostgreSQL under ${root}/*/bin (apt-get install postgresql)`);
  return join(root, v, 'bin');
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** Runs a PostgreSQL tool as the cluster owner; fails naming the tool and its stderr. */
async function pgTool(bin: string, tool: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), [...args]];
  try {
    const { stdout } = await run(cmd, argv, { timeout: timeoutMs, encoding: 'utf8' });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message?: string };
    return fail(`${tool} ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}`, e);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** {@link eventually} with a 100 ms pause between checks. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  await eventually(what, check, { timeoutMs, intervalMs: 100 });
}

function ownedDir(path: string): void {
  mkdirSync(path, { recursive: true });
  if (isRoot()) {
    const uid = Number(
      /^postgres:[^:]*:(\d+):(\d+):/m.exec(readFileSync('/etc/passwd', 'utf8'))?.[1] ?? fail('no postgres system user to run the clusters as'),
    );
    const gid = statSync(path).gid;
    chownSync(path, uid, gid);
  }
}

/** Starts a primary and a streaming replica of it; see PgPair. */
export async function startPgPrimaryReplica(opts: PgPairOptions): Promise<PgPair> {
  const bin = binDir();
  const db = opts.database ?? 'ztwim';
  const synchronous = opts.synchronous ?? true;
  const { dir, primaryPort: p1, replicaPort: p2 } = opts;
  const primary = join(dir, 'primary');
  const replica = join(dir, 'replica');
  // A pair left by an earlier run is stopped before its directory goes.
  for (const d of [primary, replica]) {
    if (existsSync(join(d, 'postmaster.pid'))) await pgTool(bin, 'pg_ctl', ['-D', d, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
  }
  rmSync(dir, { recursive: true, force: true });
  ownedDir(dir);
  await pgTool(bin, 'initdb', ['-D', primary, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  appendFileSync(
    join(primary, 'postgresql.conf'),
    [
      '',
      '# pg-replica.ts',
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      'max_connections = 200',
      'wal_level = replica',
      'max_wal_senders = 5',
      'hot_standby = on',
      'synchronous_commit = on',
      '',
    ].join('\n'),
  );
  const start = (d: string, port: number): Promise<string> =>
    pgTool(bin, 'pg_ctl', ['-D', d, '-l', join(dir, `${d === primary ? 'primary' : 'replica'}.log`), '-w', '-t', '60', '-o', `-p ${port}`, 'start']);
  await start(primary, p1);
  await pgTool(bin, 'createdb', ['-h', dir, '-p', String(p1), '-U', 'postgres', db]);
  await pgTool(bin, 'pg_basebackup', ['-h', '127.0.0.1', '-p', String(p1), '-U', 'postgres', '-D', replica, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
  await start(replica, p2);
  const psql = (port: number, sql: string): Promise<string> =>
    pgTool(bin, 'psql', ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-tAc', sql]);
  if (synchronous) {
    // Set on the primary only once its standby exists (commits would wait for one), and after the
    // copy (a promoted replica has no standby of its own and must not wait for one).
    await psql(p1, "ALTER SYSTEM SET synchronous_standby_names = '*'");
    await psql(p1, 'SELECT pg_reload_conf()');
  }
  const wanted = synchronous ? "state = 'streaming' AND sync_state = 'sync'" : "state = 'streaming'";
  await until(
    'replica streaming from the primary',
    async () => (await psql(p1, `SELECT count(*) FROM pg_stat_replication WHERE ${wanted}`)).trim() === '1',
    60_000,
  );

  const url = (port: number): string => `postgres://postgres@127.0.0.1:${port}/${db}?sslmode=disable`;
  return {
    primaryUrl: url(p1),
    replicaUrl: url(p2),
    multiHostConnectionString: `postgresql://postgres@127.0.0.1:${p1},127.0.0.1:${p2}/${db}?target_session_attrs=read-write&sslmode=disable`,
    async killPrimary() {
      const pid = Number(readFileSync(join(primary, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 0) fail(`no postmaster pid in ${primary}/postmaster.pid`);
      process.kill(pid, 'SIGKILL');
      // The backends notice their postmaster's death and exit; the port closes with the postmaster.
      await until(`primary on port ${p1} gone after SIGKILL`, async () => !(await accepts(p1)), 30_000);
    },
    async promoteReplica() {
      await pgTool(bin, 'pg_ctl', ['-D', replica, '-w', '-t', '60', 'promote']);
      await until('promoted replica accepting writes', async () => (await psql(p2, 'SELECT pg_is_in_recovery()')).trim() === 'f', 60_000);
    },
    async stop() {
      for (const d of [replica, primary]) {
        if (existsSync(join(d, 'postmaster.pid'))) await pgTool(bin, 'pg_ctl', ['-D', d, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
