/**
 * The web console at N registration entries (default 100,000): p50/p99 of the console API's entry
 * list pages (first page, a page deep in the list through its page token, a selector filter), and
 * the time to first render of the entries page in Chromium (navigation start → the first table
 * row in the DOM, from the page's own performance clock), median of several loads, and the
 * dashboard's entries per agent: the first GET /api/dashboard counts them (every entry listed),
 * later ones answer from the console's cache until the server changes.
 *
 * One `ztwim up` (the built CLI, SQLite, console on a free port), entries created through the
 * admin API in batches of 50 before measuring. No SPIRE column: SPIRE has no console (Tornjak is
 * a separate project with its own backend).
 *
 *   node --conditions=ztwim-source --import tsx bench/console.ts [--entries 100000] [--calls 200] [--loads 5]
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { EntryService, createUnixGrpcTransport } from '@ztwim/proto';
import { chromium } from 'playwright-core';
import { num } from './lib/args.ts';
import { writeResults } from './lib/results-dir.ts';
import { freePort } from '../test/interop/lib/net.ts';
import { makeTmpDir } from '../test/interop/lib/tmp.ts';
import { startUp, stopUp } from '../test/interop/lib/ztwim-up.ts';

const ENTRIES = num('entries', 100_000);
const CALLS = num('calls', 200);
const LOADS = num('loads', 5);
const BATCH = 500;
const CHROMIUM = process.env['ZTWIM_CHROMIUM'] ?? '/usr/bin/chromium';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const f1 = (n: number): string => n.toFixed(1);
const load = (): string => loadavg()[0]?.toFixed(1) ?? '?';

const dir = makeTmpDir('ztwim-bench-console-');
const consolePort = await freePort();
const up = await startUp(dir, { server: 0, oidc: 0 }, ['-consolePort', String(consolePort)]);
try {
  const m = /web console: +(http:\/\/\S+)#token=(\S+)/.exec(up.out());
  if (m === null) throw new Error(`no console line in the banner:\n${up.out()}`);
  const base = m[1] as string;
  const token = m[2] as string;

  // Fill the datastore: N entries under the node alias, one uid each, every 10th with a shared group.
  const transport = createUnixGrpcTransport(join(dir.path, 'server.sock'));
  const entries = createClient(EntryService, transport);
  const t0 = Date.now();
  for (let i = 0; i < ENTRIES; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(ENTRIES, i + BATCH); j++) {
      batch.push({
        spiffeId: { trustDomain: 'example.org', path: `/bench/w${j}` },
        parentId: { trustDomain: 'example.org', path: '/host' },
        selectors: [{ type: 'unix', value: `uid:${100000 + j}` }, ...(j % 10 === 0 ? [{ type: 'unix', value: 'group:bench' }] : [])],
      });
    }
    const r = await entries.batchCreateEntry({ entries: batch });
    const bad = r.results.find((x) => (x.status?.code ?? 0) !== 0);
    if (bad !== undefined) throw new Error(`create failed: ${bad.status?.message}`);
  }
  transport.close();
  const fillS = (Date.now() - t0) / 1000;
  console.log(`[console bench] ${ENTRIES} entries created in ${fillS.toFixed(1)} s; load ${load()}`);

  const login = await fetch(`${base}api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
  const get = async (path: string): Promise<{ ms: number; body: { items: unknown[]; nextPageToken: string } }> => {
    const s = performance.now();
    const r = await fetch(`${base}${path}`, { headers: { cookie } });
    const body = (await r.json()) as { items: unknown[]; nextPageToken: string };
    if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - s, body };
  };

  // Entries per agent (GET /api/dashboard): the first call lists every entry and counts; the next
  // ones, with nothing changed, answer from the console's cache (recounted at most every 30 s).
  type Dash = { entriesPerAgent: { rows: { entries: number }[]; tookMs: number; entries: number } | { pending: true } };
  const dashGet = async (): Promise<{ ms: number; body: Dash }> => {
    const s = performance.now();
    const r = await fetch(`${base}api/dashboard`, { headers: { cookie } });
    const body = (await r.json()) as Dash;
    if (!r.ok) throw new Error(`api/dashboard: ${r.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - s, body };
  };
  const dashLoad = load();
  // The first calls answer `pending` after 1.5 s while the count goes on; ask until it has landed.
  const t0Dash = performance.now();
  let counted: Extract<Dash['entriesPerAgent'], { rows: unknown }> | undefined;
  while (counted === undefined) {
    const e = (await dashGet()).body.entriesPerAgent;
    if ('rows' in e) counted = e;
    else await new Promise((r) => setTimeout(r, 200));
  }
  const cold = { ms: performance.now() - t0Dash };
  const warm: number[] = [];
  for (let i = 0; i < CALLS; i++) warm.push((await dashGet()).ms);
  console.log(
    `[console bench] entries per agent: counted after ${f1(cold.ms)} ms (count ${counted.tookMs} ms over ${counted.entries} entries), cached p50 ${f1(pct(warm, 50))} ms p99 ${f1(pct(warm, 99))} ms; load ${load()}`,
  );

  // A token deep in the list: walk up to 20 pages of 500 once, then time the page of 50 after it.
  let deep = '';
  let skipped = 0;
  for (let i = 0; i < 20; i++) {
    const r = await get(`api/entries?pageSize=500&pageToken=${encodeURIComponent(deep)}`);
    if (r.body.nextPageToken === '') break;
    deep = r.body.nextPageToken;
    skipped += r.body.items.length;
  }
  const rows: Array<{ name: string; times: number[]; items: number; loadBefore: string; loadAfter: string }> = [];
  const kinds: Array<[string, string]> = [
    ['entries page 1 (50 per page)', 'api/entries?pageSize=50'],
    [`entries page after ${skipped.toLocaleString('en-US')} (50 per page, page token)`, `api/entries?pageSize=50&pageToken=${encodeURIComponent(deep)}`],
    ['entries filtered by selector unix:group:bench (50 per page)', 'api/entries?pageSize=50&selector=unix%3Agroup%3Abench'],
    ['server info (counts, bundle)', 'api/server'],
  ];
  for (const [name, path] of kinds) {
    const loadBefore = load();
    const times: number[] = [];
    let items = 0;
    for (let i = 0; i < CALLS; i++) {
      const r = await get(path);
      times.push(r.ms);
      items = Array.isArray(r.body.items) ? r.body.items.length : 0;
    }
    rows.push({ name, times, items, loadBefore, loadAfter: load() });
    console.log(`[console bench] ${name}: p50 ${f1(pct(times, 50))} ms, p99 ${f1(pct(times, 99))} ms; load ${load()}`);
  }

  // First render in Chromium: a fresh page per load, logged in by cookie.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  const renders: number[] = [];
  const renderLoad = load();
  try {
    const ctx = await browser.newContext();
    const u = new URL(base);
    await ctx.addCookies([
      { name: cookie.split('=')[0] as string, value: cookie.split('=')[1] as string, domain: u.hostname, path: '/', httpOnly: true, sameSite: 'Strict' },
    ]);
    for (let i = 0; i < LOADS + 1; i++) {
      const page = await ctx.newPage();
      await page.goto(`${base}#/entries`);
      await page.waitForSelector('#entries tbody tr');
      const ms = await page.evaluate(() => performance.now());
      if (i > 0) renders.push(ms); // the first load warms the browser's caches
      await page.close();
    }
  } finally {
    await browser.close();
  }
  console.log(`[console bench] entries page first render: median ${f1(pct(renders, 50))} ms; load ${load()}`);

  const md = [
    '# Web console bench',
    '',
    `${new Date().toISOString()} · Node ${process.version} · \`ztwim up\` (built CLI, SQLite) with its console · ${ENTRIES.toLocaleString('en-US')} entries (created in ${fillS.toFixed(1)} s through BatchCreateEntry, ${BATCH} per call) · Chromium ${CHROMIUM}. No SPIRE column: SPIRE ships no console (Tornjak is a separate project).`,
    '',
    `Console API: ${CALLS} sequential calls per row from one Node client (fetch, keep-alive, logged-in cookie), wall time per call.`,
    '',
    '| console API call | items | p50 | p99 | load avg before → after |',
    '|---|--:|--:|--:|--|',
    ...rows.map((r) => `| ${r.name} | ${r.items} | ${f1(pct(r.times, 50))} ms | ${f1(pct(r.times, 99))} ms | ${r.loadBefore} → ${r.loadAfter} |`),
    '',
    `Dashboard entries per agent (GET /api/dashboard; load avg ${dashLoad}): first count ready after ${f1(cold.ms)} ms (lists and counts ${counted.entries.toLocaleString('en-US')} entries in ${counted.tookMs} ms; top agent ${counted.rows[0]?.entries ?? 0} entries); then answered from the console's cache while nothing changes: p50 ${f1(pct(warm, 50))} ms, p99 ${f1(pct(warm, 99))} ms over ${CALLS} calls.`,
    '',
    `Entries page, time to first render in Chromium (navigation start → first table row in the DOM, the page's performance.now()), median of ${LOADS} loads after one warm-up: **${f1(pct(renders, 50))} ms** (range ${f1(Math.min(...renders))}–${f1(Math.max(...renders))} ms; load avg ${renderLoad}).`,
    '',
  ].join('\n');
  writeResults('console.md', md);
  console.log(md);
} finally {
  await stopUp(up);
  dir.cleanup();
}
