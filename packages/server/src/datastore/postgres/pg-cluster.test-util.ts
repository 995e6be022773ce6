// The throwaway PostgreSQL cluster of the HA tests (scripts/pg-test-server.sh), on a directory and
// port of their own so they run beside the datastore suite, and a fresh schema per store group.
import { execFileSync } from 'node:child_process';
import pg from 'pg';

const script = new URL('../../../../../scripts/pg-test-server.sh', import.meta.url).pathname;

export const HA_PG_ENV = { ZTWIM_PG_DIR: '/tmp/ztwim-pg-ha-server', ZTWIM_PG_PORT: '25471', ZTWIM_PG_DB: 'ztwim_ha' } as const;

/** Starts (installing if needed) a throwaway cluster (env: the script's ZTWIM_PG_* settings) and returns its URL; throws naming the script's message. */
export function startPgCluster(env: Readonly<Record<string, string>> = {}): string {
  try {
    const out = execFileSync('bash', [script, 'start'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600_000,
    });
    const url = out.trim().split('\n').pop() ?? '';
    if (!url.startsWith('postgres://')) throw new Error(`printed no URL: ${out}`);
    return url;
  } catch (e) {
    throw new Error(`PostgreSQL test server could not be started with ${script} start: ${(e as { stderr?: string }).stderr || String(e)}`);
  }
}

/** The HA tests' cluster (startPgCluster). */
export const startHaPg = (): string => startPgCluster(HA_PG_ENV);

/** A connection string on `url` whose search_path is a new, empty schema; drop it with the returned function. */
export async function freshPgSchema(url: string, tag: string): Promise<{ connectionString: string; drop: () => Promise<void> }> {
  const schema = `ha_${process.pid}_${tag}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    connectionString: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}
