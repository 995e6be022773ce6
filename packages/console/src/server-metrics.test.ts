import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadMetrics, silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { MinuteRing, parseSampleLine, parseScrape, quantile, ServerMetricsFeed, type Scrape } from './server-metrics.ts';

// What a ztwim server serves: its own prom-client registry, filled as the SVID service fills it.
async function serverRegistry(): Promise<{ mint(type: 'x509' | 'jwt', seconds: number): void; text(): Promise<string> }> {
  const m = await loadMetrics({ prefix: 'ztwim_server', defaultMetrics: false });
  return {
    mint: (type, seconds) => {
      m.svidsMinted.inc({ type });
      m.svidSignDuration.observe({ type }, seconds);
    },
    text: () => m.registry.metrics(),
  };
}

describe('parseScrape', () => {
  it("reads the server's SVID counter and signing histogram from its real /metrics text", async () => {
    const r = await serverRegistry();
    for (let i = 0; i < 3; i++) r.mint('x509', 0.002);
    r.mint('jwt', 0.0004);
    const s = parseScrape(await r.text());
    assert.deepEqual(s.minted, { x509: 3, jwt: 1 });
    assert.equal(s.hasMinted, true);
    assert.equal(s.hasSignDuration, true);
    const h = s.sign.x509;
    assert.ok(h !== undefined);
    assert.equal(h.bounds.at(-1), Infinity);
    assert.equal(h.counts.at(-1), 3);
    // cumulative: nothing at or below 1 ms, all three at or below 2.5 ms
    assert.equal(h.counts[h.bounds.indexOf(0.001)], 0);
    assert.equal(h.counts[h.bounds.indexOf(0.0025)], 3);
  });

  it('says which metrics are missing, and refuses text that is not the format', () => {
    const s = parseScrape('# TYPE other_total counter\nother_total 4\n');
    assert.equal(s.hasMinted, false);
    assert.equal(s.hasSignDuration, false);
    assert.deepEqual(s.minted, { x509: 0, jwt: 0 });
    assert.throws(() => parseScrape('x 1\nztwim_server_svids_minted_total{type="x509} 3\n'), /metrics line 2: unterminated value of label type/);
    assert.throws(() => parseScrape('ztwim_server_svids_minted_total{type="jwt"} many\n'), /metrics line 1: not a number: "many"/);
  });

  it('reads label values with escapes, special values and timestamps', () => {
    assert.deepEqual(parseSampleLine('m{path="C:\\\\DIR",msg="a \\"b\\"\\nc",} +Inf 1395066363000'), {
      name: 'm',
      labels: { path: 'C:\\DIR', msg: 'a "b"\nc' },
      value: Infinity,
    });
    assert.deepEqual(parseSampleLine('up 1.5e3'), { name: 'up', labels: {}, value: 1500 });
    assert.throws(() => parseSampleLine('m{1x="a"} 1'), /bad label at column 3/);
  });
});

describe('quantile', () => {
  it('interpolates inside the bucket like histogram_quantile, and stops at the last finite bound', () => {
    const bounds = [0.001, 0.002, 0.004, Infinity];
    assert.equal(quantile(0.5, bounds, [0, 10, 0, 0]), 0.0015);
    assert.equal(quantile(0.99, bounds, [50, 0, 50, 0]), 0.002 + 0.002 * (49 / 50));
    assert.equal(quantile(0.99, bounds, [0, 0, 0, 5]), 0.004);
    assert.equal(quantile(0.5, bounds, [0, 0, 0, 0]), undefined);
  });
});

describe('MinuteRing', () => {
  const scrape = (x509: number, jwt: number, signCounts?: number[]): Scrape => ({
    minted: { x509, jwt },
    sign: { x509: signCounts === undefined ? undefined : { bounds: [0.001, 0.01, Infinity], counts: signCounts }, jwt: undefined },
    hasMinted: true,
    hasSignDuration: signCounts !== undefined,
  });

  it('keeps per-minute deltas after a baseline scrape, zero minutes between, and a bounded history', () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 7, 10, 0, 0));
    const ring = new MinuteRing(3);
    ring.add(clock.nowMs(), scrape(100, 7, [10, 20, 20]));
    clock.advance(20_000);
    ring.add(clock.nowMs(), scrape(104, 7, [12, 22, 22]));
    clock.advance(20_000);
    ring.add(clock.nowMs(), scrape(110, 9, [14, 28, 28]));
    let v = ring.view(clock.nowMs());
    assert.equal(v.length, 3);
    assert.deepEqual(
      v.map((m) => [m.x509, m.jwt]),
      [
        [0, 0],
        [0, 0],
        [10, 2],
      ],
    );
    const now = v[2];
    assert.ok(now !== undefined);
    // 4 signings ≤ 1 ms, 4 in (1, 10] ms: p50 at the top of the first bucket, p99 near 10 ms
    assert.equal(now.x509P50Ms, 1);
    assert.ok(now.x509P99Ms !== null && now.x509P99Ms > 9.5 && now.x509P99Ms <= 10, String(now.x509P99Ms));
    assert.equal(now.jwtP50Ms, null);
    // Two minutes on: this minute's traffic lands in its own slot, the first minute falls out.
    clock.advance(120_000);
    ring.add(clock.nowMs(), scrape(111, 9, [15, 29, 29]));
    v = ring.view(clock.nowMs());
    assert.deepEqual(
      v.map((m) => m.x509),
      [10, 0, 1],
    );
    clock.advance(60_000 * 3);
    assert.deepEqual(
      ring.view(clock.nowMs()).map((m) => m.x509),
      [0, 0, 0],
    );
  });

  it('counts from zero after the server restarted (its counters went down)', () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 7, 10, 0, 0));
    const ring = new MinuteRing(2);
    ring.add(clock.nowMs(), scrape(500, 0, [500, 500, 500]));
    clock.advance(5000);
    ring.add(clock.nowMs(), scrape(3, 0, [3, 3, 3]));
    const last = ring.view(clock.nowMs()).at(-1);
    assert.equal(last?.x509, 3);
    assert.equal(last?.x509P50Ms, 0.5);
  });
});

describe('ServerMetricsFeed', () => {
  it('scrapes on its interval (fake clock) into per-minute figures, and reports a failing source', async () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 7, 10, 0, 5));
    const r = await serverRegistry();
    let up = true;
    const urls: string[] = [];
    const fakeFetch = (async (url: string) => {
      urls.push(url);
      if (!up) throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9402') });
      return new Response(await r.text(), { status: 200 });
    }) as unknown as typeof fetch;
    const feed = new ServerMetricsFeed({ url: 'http://127.0.0.1:9402/metrics', clock, log: silentLogger(), intervalMs: 5000, fetch: fakeFetch });
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
    };
    feed.start();
    clock.advance(0);
    await settle();
    assert.equal(urls.length, 1);
    for (let i = 0; i < 6; i++) r.mint('x509', 0.003);
    r.mint('jwt', 0.0008);
    clock.advance(5000);
    await settle();
    assert.equal(urls.length, 2);
    let v = feed.view();
    assert.equal(v.error, '');
    assert.equal(v.lastScrapeAt, clock.nowMs());
    assert.equal(v.minutes.at(-1)?.x509, 6);
    assert.equal(v.minutes.at(-1)?.jwt, 1);
    assert.ok((v.minutes.at(-1)?.x509P50Ms ?? 0) > 2.5 && (v.minutes.at(-1)?.x509P50Ms ?? 0) <= 5);
    up = false;
    clock.advance(5000);
    await settle();
    v = feed.view();
    assert.match(v.error, /fetch failed: connect ECONNREFUSED/);
    assert.equal(v.minutes.at(-1)?.x509, 6, 'a failed scrape keeps what was counted');
    feed.stop();
    clock.advance(60_000);
    await settle();
    assert.equal(urls.length, 3, 'no scrape after stop()');
  });
});
