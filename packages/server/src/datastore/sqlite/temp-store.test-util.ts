// A real SQLite datastore in a fresh temp dir for a test, closed and removed afterwards.
import { cryptoRandom } from '@ztwim/core';
import { FakeClock, withTmpDir } from '@ztwim/testkit';
import { SqliteDataStore } from './sqlite-datastore.ts';

export async function withTempSqliteStore(fn: (ds: SqliteDataStore) => Promise<void>): Promise<void> {
  await withTmpDir(async (dir) => {
    const ds = await SqliteDataStore.open({ path: dir.file('ds.sqlite3'), clock: new FakeClock(), random: cryptoRandom });
    try {
      await fn(ds);
    } finally {
      await ds.close();
    }
  }, 'ztwim-store-');
}
