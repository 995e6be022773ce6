/**
 * Child process for the kill -9 test: creates entries in a loop and prints each id only after
 * createEntry resolved (i.e. the transaction committed). Usage: crash-child <db path>
 */
import { cryptoRandom, systemClock } from '@ztwim/core';
import { SqliteDataStore } from './sqlite-datastore.ts';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: crash-child <db path>');
const ds = await SqliteDataStore.open({ path, clock: systemClock, random: cryptoRandom });
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  if (i % 10 === 9) {
    const res = await ds.createEntries(
      Array.from({ length: 20 }, (_, j) => ({
        spiffeId: `spiffe://example.org/batch/${i}/${j}`,
        parentId: 'spiffe://example.org/agent',
        selectors: [{ type: 'n', value: `${i}-${j}` }],
      })),
    );
    process.stdout.write(res.map((r) => (r.ok ? `${r.entry.id}\n` : '')).join(''));
  } else {
    const e = await ds.createEntry({
      spiffeId: `spiffe://example.org/w/${i}`,
      parentId: 'spiffe://example.org/agent',
      selectors: [{ type: 'n', value: String(i) }],
    });
    await ds.setCaJournal('journal', Buffer.from(`journal-${i}`));
    process.stdout.write(`${e.id}\n`);
  }
}
