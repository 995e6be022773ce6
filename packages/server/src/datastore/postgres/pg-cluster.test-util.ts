// The throwaway PostgreSQL cluster of the HA tests (scripts/pg-test-server.sh), on a directory and
// port of their own so they run beside the datastore suite, and a fresh schema per store group.
import { execFileSync } from 'node:child_process';
import pg from 'pg';

const script = new URL('../../../../../scripts/pg-test-server.sh', import.meta.url).pathname;

export const HA_PG_ENV = { ZTWIM_PG_DIR: '/tmp/ztwim-pg-ha-server', ZTWIM_PG_PORT: '25471', ZTWIM_PG_DB: 'ztwim_ha' } as const;

/** Starts (installing if needed) the HA tests' cluster and returns its URL; throws naming the script's message. */
export function startHaPg(): string {
  try {
    const out = execFileSync('bash', [script, 'start'], {
      env: { ...process.env, ...HA_PG_ENV },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600_000,
    });
    return out.trim().split('\n').pop() ?? '';
  } catch (e) {
    throw new Error(`PostgreSQL test server could not be started with ${script} start: ${(e as { stderr?: string }).stderr ?? String(e)}`);
  }
}

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
