// The dashboard's traffic figures, from the server's own Prometheus endpoint (its `telemetry {
// Prometheus { ... } }` listener): SVIDs signed per minute by type, and p50/p99 of the time the CA
// took to sign them. The console scrapes the endpoint on an interval and keeps a bounded ring of
// per-minute deltas in its own memory (60 minutes by default: a few KB whatever the traffic).
//
// The text format is read by the small parser below. The one npm parser of it
// (parse-prometheus-text-format 1.1.1, unchanged since 2019) merges the label sets of a
// histogram into one, losing its `type` label, and prom-client only writes the format.
import { asError, ZtwimError, type Clock, type Logger } from '@ztwim/core';

/** Counter of SVIDs the server signed, labelled type="x509"|"jwt" (packages/core telemetry). */
export const SVIDS_MINTED = 'ztwim_server_svids_minted_total';
/** Histogram of the CA's signing time per SVID, seconds, labelled type. */
export const SIGN_DURATION = 'ztwim_server_server_ca_sign_duration_seconds';

export const SVID_TYPES = ['x509', 'jwt'] as const;
export type SvidType = (typeof SVID_TYPES)[number];

/** One cumulative histogram: upper bounds (s, ascending, +Inf last) and the counts at or below each. */
export interface Histogram {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
}

/** What one scrape says, cumulative since the server started. */
export interface Scrape {
  readonly minted: Readonly<Record<SvidType, number>>;
  readonly sign: Readonly<Record<SvidType, Histogram | undefined>>;
  /** Which of the two metrics the endpoint serves (an older server has no signing histogram). */
  readonly hasMinted: boolean;
  readonly hasSignDuration: boolean;
}

/** One sample line of the text format: `name{label="value",...} value [timestamp]`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function sampleValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const v = Number(text);
  if (text === '' || Number.isNaN(v)) throw new ZtwimError('ERR_INVALID_ARGUMENT', `not a number: ${JSON.stringify(text)}`);
  return v;
}

/** Parses one sample line; throws naming what is wrong. */
export function parseSampleLine(line: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) throw new ZtwimError('ERR_INVALID_ARGUMENT', 'no metric name');
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const label = LABEL_NAME.exec(line.slice(i))?.[0];
      if (label === undefined || line[i + label.length] !== '=' || line[i + label.length + 1] !== '"') {
        throw new ZtwimError('ERR_INVALID_ARGUMENT', `bad label at column ${i + 1}`);
      }
      i += label.length + 2;
      let value = '';
      for (;;) {
        const c = line[i++];
        if (c === undefined) throw new ZtwimError('ERR_INVALID_ARGUMENT', `unterminated value of label ${label}`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i++];
          value += e === 'n' ? '\n' : (e ?? '');
        } else value += c;
      }
      labels[label] = value;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2) throw new ZtwimError('ERR_INVALID_ARGUMENT', 'want a value (and an optional timestamp) after the name');
  return { name, labels, value: sampleValue(rest[0] ?? '') };
}

const isType = (t: string | undefined): t is SvidType => t === 'x509' || t === 'jwt';

/** Parses a scrape of the server's /metrics; throws naming the line that is not the text format. */
export function parseScrape(text: string): Scrape {
  const minted: Record<SvidType, number> = { x509: 0, jwt: 0 };
  const buckets: Record<SvidType, Map<number, number>> = { x509: new Map(), jwt: new Map() };
  let hasMinted = false;
  let hasSignDuration = false;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    // Only the two families the dashboard reads are parsed (the rest is skipped unread).
    const wanted = line.startsWith(SVIDS_MINTED) || line.startsWith(`${SIGN_DURATION}_bucket`);
    if (!wanted) continue;
    let s: Sample;
    try {
      s = parseSampleLine(line);
    } catch (e) {
      throw new ZtwimError('ERR_INVALID_ARGUMENT', `metrics line ${n + 1}: ${asError(e).message}: ${line.slice(0, 120)}`);
    }
    const t = s.labels['type'];
    if (s.name === SVIDS_MINTED) {
      hasMinted = true;
      if (isType(t) && Number.isFinite(s.value)) minted[t] += s.value;
    } else if (s.name === `${SIGN_DURATION}_bucket`) {
      hasSignDuration = true;
      const le = s.labels['le'];
      if (!isType(t) || le === undefined || !Number.isFinite(s.value)) continue;
      buckets[t].set(sampleValue(le), s.value);
    }
  }
  const histogram = (m: Map<number, number>): Histogram | undefined => {
    if (m.size === 0) return undefined;
    const bounds = [...m.keys()].sort((a, b) => a - b);
    return { bounds, counts: bounds.map((b) => m.get(b) as number) };
  };
  return { minted, sign: { x509: histogram(buckets.x509), jwt: histogram(buckets.jwt) }, hasMinted, hasSignDuration };
}

/**
 * The q-quantile (0..1) of observations counted per bucket (not cumulative: counts[i] fell in
 * (bounds[i-1], bounds[i]]), interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does; in the +Inf bucket, the highest finite bound. undefined when empty.
 */
export function quantile(q: number, bounds: readonly number[], counts: readonly number[]): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] as number;
    if (seen + c >= rank && c > 0) {
      const upper = bounds[i] as number;
      const lower = i === 0 ? 0 : (bounds[i - 1] as number);
      if (!Number.isFinite(upper)) return Number.isFinite(lower) ? lower : undefined;
      return lower + (upper - lower) * ((rank - seen) / c);
    }
    seen += c;
  }
  return bounds.filter(Number.isFinite).at(-1);
}

/** One minute of traffic as the dashboard shows it. */
export interface MinuteView {
  /** Start of the minute, Unix ms. */
  readonly start: number;
  readonly x509: number;
  readonly jwt: number;
  /** Signing time percentiles in milliseconds; null when nothing of that type was signed. */
  readonly x509P50Ms: number | null;
  readonly x509P99Ms: number | null;
  readonly jwtP50Ms: number | null;
  readonly jwtP99Ms: number | null;
}

interface Minute {
  readonly start: number;
  readonly minted: Record<SvidType, number>;
  /** Per-bucket (not cumulative) signing counts; bounds are the ring's current ones. */
  readonly sign: Record<SvidType, number[]>;
}

const MINUTE_MS = 60_000;

/** The per-minute deltas between consecutive scrapes, for the last `capacity` minutes. */
export class MinuteRing {
  readonly #capacity: number;
  readonly #minutes: Minute[] = [];
  #last: Scrape | undefined;
  #bounds: Record<SvidType, readonly number[]> = { x509: [], jwt: [] };

  constructor(capacity = 60) {
    this.#capacity = Math.max(1, capacity);
  }

  #minute(atMs: number): Minute {
    const start = Math.floor(atMs / MINUTE_MS) * MINUTE_MS;
    const last = this.#minutes.at(-1);
    if (last !== undefined && last.start === start) return last;
    const m: Minute = { start, minted: { x509: 0, jwt: 0 }, sign: { x509: [], jwt: [] } };
    this.#minutes.push(m);
    while (this.#minutes.length > this.#capacity) this.#minutes.shift();
    return m;
  }

  /**
   * Adds what happened since the previous scrape to the minute of `atMs`. The first scrape only
   * sets the baseline (what the server counted before the console watched is not "per minute");
   * a counter that went down (the server restarted) counts from zero.
   */
  add(atMs: number, s: Scrape): void {
    const prev = this.#last;
    this.#last = s;
    if (prev === undefined) {
      for (const t of SVID_TYPES) this.#bounds[t] = s.sign[t]?.bounds ?? [];
      return;
    }
    const m = this.#minute(atMs);
    for (const t of SVID_TYPES) {
      const now = s.minted[t];
      const before = prev.minted[t];
      m.minted[t] += now >= before ? now - before : now;
      const h = s.sign[t];
      if (h === undefined) continue;
      const p = prev.sign[t];
      const sameBounds = p !== undefined && p.bounds.length === h.bounds.length && p.bounds.every((b, i) => b === h.bounds[i]);
      const restarted = p === undefined || !sameBounds || (h.counts.at(-1) ?? 0) < (p.counts.at(-1) ?? 0);
      if (!sameBounds || this.#bounds[t].length !== h.bounds.length) {
        // New bucket layout: earlier minutes' buckets no longer line up, so they are dropped.
        this.#bounds[t] = h.bounds;
        for (const x of this.#minutes) x.sign[t] = [];
      }
      const perBucket = h.counts.map((c, i) => {
        const cum = restarted ? c : c - (p.counts[i] ?? 0);
        const below = i === 0 ? 0 : restarted ? (h.counts[i - 1] as number) : (h.counts[i - 1] as number) - (p.counts[i - 1] ?? 0);
        return Math.max(0, cum - below);
      });
      const acc = m.sign[t];
      for (let i = 0; i < perBucket.length; i++) acc[i] = (acc[i] ?? 0) + (perBucket[i] as number);
    }
  }

  /** The last `capacity` minutes up to the one holding nowMs, oldest first, empty minutes as zeros. */
  view(nowMs: number): MinuteView[] {
    const current = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS;
    const byStart = new Map(this.#minutes.map((m) => [m.start, m]));
    const out: MinuteView[] = [];
    for (let i = this.#capacity - 1; i >= 0; i--) {
      const start = current - i * MINUTE_MS;
      const m = byStart.get(start);
      const ms = (t: SvidType, q: number): number | null => {
        const v = m === undefined ? undefined : quantile(q, this.#bounds[t], m.sign[t]);
        return v === undefined ? null : v * 1000;
      };
      out.push({
        start,
        x509: m?.minted.x509 ?? 0,
        jwt: m?.minted.jwt ?? 0,
        x509P50Ms: ms('x509', 0.5),
        x509P99Ms: ms('x509', 0.99),
        jwtP50Ms: ms('jwt', 0.5),
        jwtP99Ms: ms('jwt', 0.99),
      });
    }
    return out;
  }
}

/** What the dashboard gets about the metrics source. */
export interface MetricsView {
  readonly url: string;
  readonly intervalSeconds: number;
  /** Unix ms of the last scrape that worked; 0 before the first. */
  readonly lastScrapeAt: number;
  /** Why the last scrape failed ('' when it worked). */
  readonly error: string;
  readonly hasMinted: boolean;
  readonly hasSignDuration: boolean;
  readonly minutes: readonly MinuteView[];
}

export interface MetricsFeedOptions {
  /** The server's Prometheus endpoint, e.g. http://127.0.0.1:9402/metrics. */
  readonly url: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Default 5 s. */
  readonly intervalMs?: number;
  /** Minutes kept (default 60). */
  readonly minutes?: number;
  /** Default globalThis.fetch. */
  readonly fetch?: typeof fetch;
}

const MAX_SCRAPE_BYTES = 4 << 20;

/** Scrapes the server's metrics every interval into a MinuteRing. */
export class ServerMetricsFeed {
  readonly #opts: MetricsFeedOptions;
  readonly #ring: MinuteRing;
  readonly #intervalMs: number;
  #cancel: (() => void) | undefined;
  #stopped = false;
  #lastScrapeAt = 0;
  #error = '';
  #hasMinted = false;
  #hasSignDuration = false;

  constructor(opts: MetricsFeedOptions) {
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs ?? 5000;
    this.#ring = new MinuteRing(opts.minutes ?? 60);
  }

  /** Scrapes now and then every interval until stop(). */
  start(): void {
    const tick = async (): Promise<void> => {
      await this.scrapeOnce();
      if (!this.#stopped) this.#cancel = this.#opts.clock.setTimer(this.#intervalMs, () => void tick());
    };
    this.#cancel = this.#opts.clock.setTimer(0, () => void tick());
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
  }

  /** One scrape; a failure is kept (and shown) as the source's error, never thrown. */
  async scrapeOnce(): Promise<void> {
    const f = this.#opts.fetch ?? globalThis.fetch;
    try {
      const res = await f(this.#opts.url, { signal: AbortSignal.timeout(Math.max(1000, Math.min(this.#intervalMs, 10_000))) });
      if (!res.ok) throw new ZtwimError('ERR_UNAVAILABLE', `HTTP ${res.status}`);
      const text = await res.text();
      if (text.length > MAX_SCRAPE_BYTES) throw new ZtwimError('ERR_RESOURCE_EXHAUSTED', `over ${MAX_SCRAPE_BYTES} bytes`);
      const s = parseScrape(text);
      this.#ring.add(this.#opts.clock.nowMs(), s);
      this.#lastScrapeAt = this.#opts.clock.nowMs();
      this.#hasMinted = s.hasMinted;
      this.#hasSignDuration = s.hasSignDuration;
      if (this.#error !== '') this.#opts.log.info({ address: this.#opts.url }, 'console: Server metrics scraped again');
      this.#error = '';
    } catch (e) {
      const err = asError(e);
      const message = `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}`;
      if (this.#error === '') this.#opts.log.warn({ address: this.#opts.url, error: message }, 'console: Server metrics scrape failed');
      this.#error = message;
    }
  }

  view(): MetricsView {
    return {
      url: this.#opts.url,
      intervalSeconds: this.#intervalMs / 1000,
      lastScrapeAt: this.#lastScrapeAt,
      error: this.#error,
      hasMinted: this.#hasMinted,
      hasSignDuration: this.#hasSignDuration,
      minutes: this.#ring.view(this.#opts.clock.nowMs()),
    };
  }
}
