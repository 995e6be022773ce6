import 'reflect-metadata';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { createLogger, cryptoRandom } from '@ztwim/core';
import { SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import { captureLogs, FakeClock } from '@ztwim/testkit';
import { SqliteDataStore } from '../datastore/sqlite/sqlite-datastore.ts';
import type { FetchBundleOptions } from './fetch-bundle.ts';
import { FederationRefresher, nextRefreshMs } from './refresher.ts';

x509.cryptoProvider.set(webcrypto as never);

/** A self-signed CA naming `spiffe://<td>` in its URI SAN, as SPIRE's and ztwim's CAs do. */
async function caFor(td: string): Promise<Uint8Array> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=ca',
    notBefore: new Date(0),
    notAfter: new Date(Date.UTC(2100, 0, 1)),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${td}` }]),
    ],
  });
  return new Uint8Array(cert.rawData);
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
};

describe('FederationRefresher', () => {
  let dir: string;
  let ds: SqliteDataStore;
  let clock: FakeClock;
  const { log, lines } = captureLogs();
  let caB: Uint8Array;
  let caOther: Uint8Array;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ztwim-refresher-'));
    clock = new FakeClock();
    ds = await SqliteDataStore.open({ path: join(dir, 'ds.sqlite3'), clock, random: cryptoRandom });
    caB = await caFor('b.test');
    caOther = await caFor('other.test');
  });
  after(async () => {
    await ds.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rel = { trustDomain: 'b.test', bundleEndpointUrl: 'https://127.0.0.1:1/', bundleEndpointProfile: 'https_web', endpointSpiffeId: '' } as const;
  const served = (ca: Uint8Array, seq: bigint, hint = 20): SpiffeBundle =>
    SpiffeBundle.fromParts(TrustDomain.parse('b.test'), { x509: [ca], sequenceNumber: seq, refreshHintSeconds: hint });

  it('polls at a quarter of the refresh hint, never below a quarter of a minute', () => {
    assert.equal(nextRefreshMs(20), 15_000);
    assert.equal(nextRefreshMs(600), 150_000);
    assert.equal(nextRefreshMs(undefined), 300_000);
  });

  it('fetches at start and then at the hint; refuses bad answers with one line naming the relationship and keeps the last good bundle; backs off', async () => {
    let answer: () => SpiffeBundle = () => served(caB, 3n);
    const calls: FetchBundleOptions[] = [];
    const r = new FederationRefresher({
      dataStore: ds,
      clock,
      log,
      relationships: [rel],
      fetch: async (o) => {
        calls.push(o);
        return answer();
      },
    });
    await r.start();
    clock.advance(0);
    await settle();
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.trustDomain.name, 'b.test');
    const first = await ds.getBundle('b.test');
    assert.equal(first?.spiffeSequence, 3n);
    assert.deepEqual(
      first?.x509Authorities.map((a) => Buffer.from(a.asn1).toString('hex')),
      [Buffer.from(caB).toString('hex')],
    );

    clock.advance(14_999);
    await settle();
    assert.equal(calls.length, 1, 'not before a quarter of the 20 s hint floored to 1 min');
    clock.advance(1);
    await settle();
    assert.equal(calls.length, 2);

    const refusals: Array<[() => SpiffeBundle, RegExp]> = [
      [() => served(caOther, 4n), /trust domain "other\.test", expected "b\.test"/],
      [() => served(caB, 2n), /spiffe_sequence went down from 3 to 2/],
      [() => SpiffeBundle.parse(TrustDomain.parse('b.test'), '{"keys":[{"kty":"EC"}]}', { strict: true }), /missing use for key entry 0/],
      [
        () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:1');
        },
        /ECONNREFUSED/,
      ],
    ];
    let waited = 15_000;
    let failures = 0;
    for (const [bad, re] of refusals) {
      answer = bad;
      lines.length = 0;
      clock.advance(waited);
      await settle();
      failures++;
      const errs = lines.filter((l) => l['msg'] === 'Error updating bundle');
      assert.equal(errs.length, 1, `one line for ${re}`);
      assert.equal(errs[0]?.['trust_domain'], 'b.test');
      assert.equal(errs[0]?.['bundle_endpoint_url'], rel.bundleEndpointUrl);
      assert.match(String(errs[0]?.['error']), re);
      const kept = await ds.getBundle('b.test');
      assert.equal(kept?.spiffeSequence, 3n, 'the last good bundle stays');
      assert.equal(kept?.sequenceNumber, first?.sequenceNumber);
      waited = 15_000 * Math.min(2 ** (failures - 1), 8);
      assert.equal(errs[0]?.['retry_in_ms'], waited, 'backs off: doubles after each failure');
    }
    const before = calls.length;
    answer = () => served(caB, 9n, 600);
    clock.advance(waited - 1);
    await settle();
    assert.equal(calls.length, before);
    clock.advance(1);
    await settle();
    assert.equal(calls.length, before + 1);
    assert.equal((await ds.getBundle('b.test'))?.spiffeSequence, 9n);
    assert.equal(await r.refresh('none.test'), false);
    assert.equal(await r.refresh('b.test'), true);
    assert.equal(calls.length, before + 2);
    await r.stop();
  });

  it('picks up relationships created through the datastore, and drops deleted ones', async () => {
    const r = new FederationRefresher({ dataStore: ds, clock, log, relationships: [], fetch: async () => served(caB, 1n) });
    await r.start();
    assert.deepEqual(r.trustDomains(), []);
    await ds.createFederationRelationship({ ...rel, trustDomain: 'c.test' });
    clock.advance(10_000);
    await settle();
    assert.deepEqual(r.trustDomains(), ['c.test']);
    await ds.deleteFederationRelationship('c.test');
    r.reload();
    await settle();
    assert.deepEqual(r.trustDomains(), []);
    await r.stop();
  });

  it('1,000 relationships: one timer each plus the reload, however many failures and reloads pass', async (t) => {
    // Bounded state: a relationship is one map entry and one armed timer; a failing endpoint
    // reschedules (backing off) instead of piling up timers or retries.
    const dir2 = mkdtempSync(join(tmpdir(), 'ztwim-refresher-1k-'));
    const clock2 = new FakeClock();
    const ds2 = await SqliteDataStore.open({ path: join(dir2, 'ds.sqlite3'), clock: clock2, random: cryptoRandom });
    try {
      const n = 1000;
      const name = (i: number): string => `r${i}.test`;
      for (let i = 0; i < n; i++) await ds2.createFederationRelationship({ ...rel, trustDomain: name(i), bundleEndpointUrl: `https://127.0.0.1:1/${i}` });
      let calls = 0;
      let inFlight = 0;
      let maxInFlight = 0;
      const quiet = createLogger({ level: 'fatal' });
      const r = new FederationRefresher({
        dataStore: ds2,
        clock: clock2,
        log: quiet,
        relationships: [],
        fetch: async () => {
          calls++;
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          await new Promise<void>((res) => setImmediate(res));
          inFlight--;
          throw new Error('connect ECONNREFUSED 127.0.0.1:1');
        },
      });
      const until = async (what: string, ok: () => boolean): Promise<void> => {
        for (let i = 0; i < 2000 && !ok(); i++) await new Promise<void>((res) => setImmediate(res));
        assert.ok(ok(), what);
      };
      // A full GC before each heap reading (the figure is retained memory, not garbage).
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      gc();
      const heap0 = process.memoryUsage().heapUsed;
      await r.start();
      assert.equal(r.trustDomains().length, n);
      assert.equal(clock2.pending(), n + 1, 'one timer per relationship and the reload timer');
      clock2.advance(0);
      await until('every relationship fetched once', () => calls === n && inFlight === 0 && clock2.pending() === n + 1);
      gc();
      const heap1 = process.memoryUsage().heapUsed;
      const rounds = 12;
      for (let round = 1; round <= rounds; round++) {
        // 8 minutes: past the longest backoff (8 x 1 min) and 48 reloads of the relationships.
        clock2.advance(480_000);
        await until(
          `round ${round}: every relationship retried once more, timers back to n + 1`,
          () => calls === n * (round + 1) && inFlight === 0 && clock2.pending() === n + 1,
        );
      }
      gc();
      const heap2 = process.memoryUsage().heapUsed;
      const mib = (b: number): string => (b / 1048576).toFixed(2);
      t.diagnostic(
        `${calls} failed fetches over ${rounds * 8} fake minutes: ${clock2.pending()} timers armed, at most ${maxInFlight} fetches at once; retained heap +${mib(heap1 - heap0)} MiB after the first round, ${mib(heap2 - heap1)} MiB more after ${rounds} more`,
      );
      for (let i = 0; i < n; i += 2) await ds2.deleteFederationRelationship(name(i));
      clock2.advance(10_000);
      await until('deleted relationships dropped with their timers', () => r.trustDomains().length === n / 2 && clock2.pending() === n / 2 + 1);
      await r.stop();
      assert.equal(clock2.pending(), 0, 'stop disarms every timer');
    } finally {
      await ds2.close();
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});
