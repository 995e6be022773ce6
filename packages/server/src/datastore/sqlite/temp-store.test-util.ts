// A real SQLite datastore in a fresh temp dir for a test, closed and removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cryptoRandom } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { SqliteDataStore } from './sqlite-datastore.ts';

export async function withTempSqliteStore(fn: (ds: SqliteDataStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-store-'));
  const ds = await SqliteDataStore.open({ path: join(dir, 'ds.sqlite3'), clock: new FakeClock(), random: cryptoRandom });
  try {
    await fn(ds);
  } finally {
    await ds.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
