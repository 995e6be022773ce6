import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { cryptoRandom, isZtwimError } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { runDataStoreContract } from '../datastore.test-suite.ts';
import { SCHEMA_VERSION } from '../sql/schema.ts';
import { SqliteDataStore } from './sqlite-datastore.ts';

const root = mkdtempSync(join(tmpdir(), 'ztwim-sqlite-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newPath = (): string => join(root, `db-${n++}`, 'nested', 'datastore.sqlite3');

runDataStoreContract('sqlite', async ({ clock, random }) => {
  const path = newPath();
  const store = await SqliteDataStore.open({ path, clock, random });
  return { store, peer: () => SqliteDataStore.open({ path, clock, random }) };
});

describe('SqliteDataStore', () => {
  const open = (path: string): Promise<SqliteDataStore> => SqliteDataStore.open({ path, clock: new FakeClock(), random: cryptoRandom });

  it('creates parent directories, uses WAL, FULL sync, foreign keys and records the schema version', async () => {
    const path = newPath();
    const ds = await open(path);
    await ds.close();
    assert.ok(existsSync(path));
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.deepEqual(
        db.prepare('SELECT version, code_version FROM migrations ORDER BY version').all(),
        Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1, code_version: '0.1.0' })),
      );
    } finally {
      db.close();
    }
    // Reopening applies nothing twice.
    const again = await open(path);
    assert.equal(await again.integrityCheck(), 'ok');
    await again.close();
  });

  it('refuses a file that is not SQLite, naming it, and leaves it untouched', async () => {
    const path = join(root, 'not-sqlite.db');
    const content = 'this is a text file, not a database\n'.repeat(200);
    writeFileSync(path, content);
    let err: unknown;
    try {
      await open(path);
    } catch (e) {
      err = e;
    }
    assert.ok(isZtwimError(err, 'ERR_DATASTORE'), String(err));
    assert.match((err as Error).message, /not a SQLite database/);
    assert.ok((err as Error).message.includes(path));
    assert.equal(readFileSync(path, 'utf8'), content);
    assert.ok(!existsSync(`${path}-wal`));
  });

  it('refuses a database whose schema is newer than this code', async () => {
    const path = newPath();
    await (await open(path)).close();
    const db = new Database(path);
    db.prepare('INSERT INTO migrations (version, code_version, applied_at) VALUES (?, ?, 0)').run(SCHEMA_VERSION + 1, '9.9.9');
    db.close();
    await assert.rejects(open(path), (e: unknown) => {
      assert.ok(isZtwimError(e, 'ERR_DATASTORE'));
      assert.match(e.message, new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this ztwim supports \\(${SCHEMA_VERSION}\\)`));
      return true;
    });
  });

  it('with disableMigration refuses an unmigrated file and opens a migrated one', async () => {
    const path = newPath();
    const deps = { clock: new FakeClock(), random: cryptoRandom };
    await assert.rejects(SqliteDataStore.open({ path, disableMigration: true, ...deps }), (e: unknown) => {
      assert.ok(isZtwimError(e, 'ERR_DATASTORE'));
      assert.match(e.message, /migrations are disabled/);
      return true;
    });
    const ds = await SqliteDataStore.open({ path, ...deps });
    await ds.createJoinToken({ token: 't', expiresAt: 1 });
    await ds.close();
    const again = await SqliteDataStore.open({ path, disableMigration: true, ...deps });
    assert.deepEqual(await again.takeJoinToken('t'), { token: 't', expiresAt: 1 });
    await again.close();
  });

  it('keeps every acknowledged write after kill -9 mid-write-loop, and the file stays intact', async () => {
    const path = newPath();
    const child = spawn(
      process.execPath,
      ['--conditions=ztwim-source', '--import', 'tsx', new URL('./crash-child.test-util.ts', import.meta.url).pathname, path],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let errOut = '';
    child.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_c, sig) => res(sig)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // Kill once a few hundred writes were acknowledged, while the loop is still writing.
        if (out.split('\n').length > 400) resolve();
      });
      child.on('exit', () => reject(new Error(`child exited early: ${errOut}`)));
    });
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const acked = out.split('\n').filter((l) => l !== '' && l !== 'ready');
    // The last line may be cut mid-write: only complete lines count as acknowledged.
    if (!out.endsWith('\n')) acked.pop();
    assert.ok(acked.length >= 400, `only ${acked.length} writes acknowledged`);
    const ds = await open(path);
    try {
      assert.equal(await ds.integrityCheck(), 'ok');
      const present = new Set((await ds.listEntries()).entries.map((e) => e.id));
      const missing = acked.filter((id) => !present.has(id));
      assert.deepEqual(missing, [], `${missing.length} acknowledged writes lost`);
      assert.match(Buffer.from((await ds.getCaJournal('journal')) ?? []).toString(), /^journal-\d+$/);
    } finally {
      await ds.close();
    }
  });
});
