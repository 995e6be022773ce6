/**
 * Datastore bench. Run: node --conditions=ztwim-source --import tsx bench/datastore.ts [--pg URL]
 * (add --expose-gc before --conditions for the RSS/heap figures after a full GC).
 * Prints a Markdown table and writes bench/results/datastore.md.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import pg from 'pg';
import { cryptoRandom, systemClock } from '@ztwim/core';
import { PostgresDataStore, SqliteDataStore, type DataStore, type NewEntry } from '@ztwim/server';
import { writeResults } from './lib/results-dir.ts';
import { flagValue, num } from './lib/args.ts';

const TD = 'spiffe://example.org';
const pgUrl = flagValue('pg');
/** Store size of the large measurements (default 100k; the CI smoke run uses a few thousand). */
const LARGE = num('entries', 100_000);
if (!Number.isInteger(LARGE) || LARGE < 5000) throw new Error('--entries must be an integer >= 5000');
const SMALL = LARGE / 10;
const SINGLES = Math.min(1000, SMALL / 5);
const k = (n: number): string => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));

interface Row {
  readonly backend: string;
  readonly metric: string;
  readonly value: string;
}
const rows: Row[] = [];
const record = (backend: string, metric: string, value: string): void => {
  rows.push({ backend, metric, value });
  process.stderr.write(`${backend}\t${metric}\t${value}\n`);
};

const ms = (t0: number): number => performance.now() - t0;
const fmt = (n: number, d = 1): string => n.toFixed(d);
const rate = (n: number, t: number): string => `${Math.round((n / t) * 1000).toLocaleString('en-US')}/s`;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

const AGENT = `${TD}/spire/agent/x509pop/bench-agent`;

/** Entry i of the bulk set: 99 other agents own most entries; the bench agent owns 1,000. */
function bulkEntry(i: number): NewEntry {
  return {
    spiffeId: `${TD}/ns/${i % 500}/sa/w${i}`,
    parentId: `${TD}/spire/agent/x509pop/other-${i % 99}`,
    selectors: [
      { type: 'k8s', value: `ns:ns-${i % 500}` },
      { type: 'k8s', value: `sa:w${i}` },
    ],
    x509SvidTtl: 3600,
    dnsNames: [`w${i}.example.org`],
  };
}

/** The agent's 1,000: 500 direct children, 400 grandchildren, 50 alias children (+ alias itself). */
function agentEntries(): NewEntry[] {
  const out: NewEntry[] = [];
  for (let i = 0; i < 500; i++) out.push({ spiffeId: `${TD}/agent/w${i}`, parentId: AGENT, selectors: [{ type: 'unix', value: `uid:${i}` }] });
  for (let i = 0; i < 400; i++) out.push({ spiffeId: `${TD}/agent/w${i}/c`, parentId: `${TD}/agent/w${i}`, selectors: [{ type: 'unix', value: `uid:c${i}` }] });
  out.push({ spiffeId: `${TD}/cluster/bench`, parentId: `${TD}/spire/server`, selectors: [{ type: 'x509pop', value: 'subject:cn:bench' }] });
  for (let i = 0; i < 100; i++) out.push({ spiffeId: `${TD}/cluster/w${i}`, parentId: `${TD}/cluster/bench`, selectors: [{ type: 'k8s', value: `pod:${i}` }] });
  return out;
}

async function fill(ds: DataStore, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 500) {
    const batch: NewEntry[] = [];
    for (let j = i; j < Math.min(to, i + 500); j++) batch.push(bulkEntry(j));
    const r = await ds.createEntries(batch);
    if (r.some((x) => !x.ok)) throw new Error('bench: batch create failed');
  }
}

async function listAll(ds: DataStore): Promise<number> {
  let token = '';
  let n = 0;
  do {
    const r = await ds.listEntries(undefined, { pageSize: 500, pageToken: token });
    n += r.entries.length;
    token = r.nextPageToken;
  } while (token !== '');
  return n;
}

async function benchStore(backend: string, open: () => Promise<DataStore>, singles: number): Promise<void> {
  let ds = await open();
  // Single creates (one transaction each).
  let t0 = performance.now();
  for (let i = 0; i < singles; i++) {
    await ds.createEntry({ spiffeId: `${TD}/single/${i}`, parentId: `${TD}/single-parent`, selectors: [{ type: 's', value: String(i) }] });
  }
  record(backend, `createEntry, single (${singles} sequential)`, rate(singles, ms(t0)));

  const agent = agentEntries();
  const r = await ds.createEntries(agent);
  if (r.some((x) => !x.ok)) throw new Error('bench: agent entries failed');
  const base = singles + agent.length;

  t0 = performance.now();
  await fill(ds, 0, SMALL - base);
  record(backend, 'createEntries, batches of 500', rate(SMALL - base, ms(t0)));
  t0 = performance.now();
  let n = await listAll(ds);
  record(backend, `list all ${n.toLocaleString('en-US')} entries, pages of 500`, `${fmt(ms(t0))} ms`);

  t0 = performance.now();
  await fill(ds, SMALL - base, LARGE - base);
  record(backend, `createEntries, batches of 500 (${k(SMALL)} → ${k(LARGE)})`, rate(LARGE - SMALL, ms(t0)));
  t0 = performance.now();
  n = await listAll(ds);
  record(backend, `list all ${n.toLocaleString('en-US')} entries, pages of 500`, `${fmt(ms(t0))} ms`);
  t0 = performance.now();
  const page = await ds.listEntries({ byParentId: `${TD}/spire/agent/x509pop/other-7` }, { pageSize: 500 });
  record(backend, `listEntries byParentId (1 page of 500) at ${k(LARGE)}`, `${fmt(ms(t0))} ms`);
  // bulkEntry(i) has parent other-(i % 99): other-7 owns every 99th of the bulk entries.
  const other7 = Math.floor((LARGE - base - 1 - 7) / 99) + 1;
  if (page.entries.length !== Math.min(500, other7)) throw new Error('bench: filter page');
  t0 = performance.now();
  await ds.countEntries({ bySelectors: { selectors: [{ type: 'k8s', value: 'ns:ns-7' }], match: 'SUPERSET' } });
  record(backend, `countEntries bySelectors SUPERSET at ${k(LARGE)}`, `${fmt(ms(t0))} ms`);

  const nodeSels = [{ type: 'x509pop', value: 'subject:cn:bench' }];
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  t0 = performance.now();
  let auth = await ds.listAuthorizedEntries(AGENT, nodeSels);
  record(backend, `listAuthorizedEntries, first call (builds index over ${k(LARGE)})`, `${fmt(ms(t0))} ms`);
  if (global.gc !== undefined) {
    global.gc();
    record(backend, `heap held by the authorised-entry index (${k(LARGE)})`, `${fmt((process.memoryUsage().heapUsed - heap0) / 2 ** 20, 0)} MiB`);
  }
  if (auth.length !== 1000) throw new Error(`bench: expected 1000 authorised entries, got ${auth.length}`);
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    t0 = performance.now();
    auth = await ds.listAuthorizedEntries(AGENT, nodeSels);
    times.push(ms(t0));
  }
  record(backend, `listAuthorizedEntries, 1,000 of ${k(LARGE)} (median of 20)`, `${fmt(median(times), 2)} ms`);
  await ds.createEntry({ spiffeId: `${TD}/agent/late`, parentId: AGENT, selectors: [{ type: 'unix', value: 'uid:late' }] });
  t0 = performance.now();
  auth = await ds.listAuthorizedEntries(AGENT, nodeSels);
  record(backend, 'listAuthorizedEntries right after a write (event replay)', `${fmt(ms(t0), 2)} ms`);
  if (auth.length !== 1001) throw new Error('bench: late entry missing');
  global.gc?.();
  record(backend, `RSS at ${k(LARGE)} entries (index built)`, `${fmt(process.memoryUsage().rss / 2 ** 20, 0)} MiB`);
  await ds.close();

  t0 = performance.now();
  ds = await open();
  const tOpen = ms(t0);
  await ds.listAuthorizedEntries(AGENT, nodeSels);
  record(backend, `open + migrate check with ${k(LARGE)} on disk`, `${fmt(tOpen)} ms`);
  record(backend, `open + ready (index built) with ${k(LARGE)} on disk`, `${fmt(ms(t0))} ms`);
  await ds.close();
}

/** The floor: what better-sqlite3 does with a minimal table and no store logic. */
function rawSqlite(dir: string, singles: number): void {
  const db = new Database(join(dir, 'raw.sqlite3'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, spiffe_id TEXT, parent_id TEXT, data TEXT)');
  db.exec('CREATE INDEX t_parent ON t (parent_id)');
  const ins = db.prepare('INSERT INTO t (id, spiffe_id, parent_id, data) VALUES (?, ?, ?, ?)');
  let t0 = performance.now();
  for (let i = 0; i < singles; i++) ins.run(`s${i}`, `${TD}/s/${i}`, `${TD}/p`, '{}');
  record('raw better-sqlite3', `insert, autocommit (${singles})`, rate(singles, ms(t0)));
  const N = LARGE;
  t0 = performance.now();
  const tx = db.transaction(() => {
    for (let i = 0; i < N; i++) ins.run(`b${i}`, `${TD}/w/${i}`, `${TD}/p${i % 99}`, JSON.stringify({ i }));
  });
  tx();
  record('raw better-sqlite3', `insert, one transaction (${k(N)})`, rate(N, ms(t0)));
  const sel = db.prepare('SELECT * FROM t WHERE id = ?');
  t0 = performance.now();
  for (let i = 0; i < 20_000; i++) sel.get(`b${(i * 7919) % N}`);
  record('raw better-sqlite3', 'select by key', rate(20_000, ms(t0)));
  const scan = db.prepare('SELECT * FROM t WHERE seq > ? ORDER BY seq LIMIT 500');
  t0 = performance.now();
  let last = 0;
  for (;;) {
    const rs = scan.all(last) as Array<{ seq: number }>;
    if (rs.length === 0) break;
    last = rs[rs.length - 1]?.seq ?? last;
  }
  record('raw better-sqlite3', `scan all ${k(N)} rows, pages of 500`, `${fmt(ms(t0))} ms`);
  db.close();
}

const dir = mkdtempSync(join(tmpdir(), 'ztwim-bench-ds-'));
const started = performance.now();
try {
  rawSqlite(dir, SINGLES);
  const path = join(dir, 'store', 'datastore.sqlite3');
  await benchStore('SqliteDataStore', () => SqliteDataStore.open({ path, clock: systemClock, random: cryptoRandom }), SINGLES);
  if (pgUrl !== undefined) {
    const admin = new pg.Pool({ connectionString: pgUrl, max: 1 });
    const schema = `bench_${process.pid}`;
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.query(`CREATE SCHEMA ${schema}`);
    const u = new URL(pgUrl);
    u.searchParams.set('options', `-c search_path=${schema}`);
    try {
      await benchStore(
        'PostgresDataStore',
        () => PostgresDataStore.open({ connectionString: u.toString(), maxOpenConns: 10, maxIdleConns: 2, clock: systemClock, random: cryptoRandom }),
        1000,
      );
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const table = ['| backend | metric | value |', '|---|---|---|', ...rows.map((r) => `| ${r.backend} | ${r.metric} | ${r.value} |`)].join('\n');
const md = `# Datastore bench

Run: \`node --conditions=ztwim-source --import tsx bench/datastore.ts${pgUrl === undefined ? '' : ' --pg URL'}\`
(${new Date().toISOString()}, Node ${process.version}, ${process.platform}/${process.arch}; SQLite in WAL mode with synchronous=FULL, temp dir on the local disk; total ${fmt(ms(started) / 1000)} s)

${table}
`;
process.stdout.write(`${table}\n`);
writeResults('datastore.md', md);
