// The dashboard's charts: SVIDs issued per minute and their signing times (from the server's own
// Prometheus metrics, scraped by the console: GET /api/dashboard), entries per agent, and the CA
// rotation timeline (the bundle's authorities on a time axis with "now"). Charts are inline SVG
// drawn by preact, coloured by classes in app.css (the CSP allows no inline style), each with a
// text alternative: an aria-label on the chart and a table of the same figures.
import { h, type VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { useLoad } from './use-load.ts';

const html = htm.bind(h) as (strings: TemplateStringsArray, ...values: unknown[]) => VNode;

export interface TimelineAuthority {
  kind: string;
  name: string;
  notBefore: number;
  expiresAt: number;
  tainted: boolean;
  /** active, prepared or old on this server, or ''. */
  state: string;
}

interface Minute {
  start: number;
  x509: number;
  jwt: number;
  x509P50Ms: number | null;
  x509P99Ms: number | null;
  jwtP50Ms: number | null;
  jwtP99Ms: number | null;
}

interface MetricsOn {
  configured: true;
  url: string;
  intervalSeconds: number;
  lastScrapeAt: number;
  error: string;
  hasMinted: boolean;
  hasSignDuration: boolean;
  minutes: Minute[];
}

interface DashboardData {
  metrics: MetricsOn | { configured: false; hint: string };
  entriesPerAgent:
    | { rows: { agentId: string; entries: number }[]; agents: number; entries: number; computedAt: number; tookMs: number }
    | { error: string }
    | { pending: true };
}

/** Minutes shown in the charts (the console keeps 60). */
const SHOWN_MINUTES = 30;
const W = 600;
const H = 160;
const PAD = { left: 44, right: 8, top: 8, bottom: 22 };

const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
const day = (unix: number): string => new Date(unix * 1000).toISOString().slice(0, 10);
const fmtMs = (v: number | null): string => (v === null ? '—' : v < 1 ? `${v.toFixed(2)} ms` : `${v.toFixed(1)} ms`);

/** A round axis maximum at or above v (1, 2, 5 × 10^n). */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function Axis(props: { max: number; unit: string }): VNode {
  const y = (v: number): number => PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / props.max);
  return html`<g class="axis">
    ${[0, props.max / 2, props.max].map(
      (v) =>
        html`<line x1=${PAD.left} x2=${W - PAD.right} y1=${y(v)} y2=${y(v)} class="grid" />
          <text x=${PAD.left - 4} y=${y(v) + 4} text-anchor="end">${Number(v.toPrecision(3))}${props.unit}</text>`,
    )}
  </g>`;
}

/** Stacked bars per minute: X.509 below, JWT on top. */
function SvidChart(props: { minutes: Minute[] }): VNode {
  const ms = props.minutes;
  const max = niceMax(Math.max(...ms.map((m) => m.x509 + m.jwt)));
  const plotH = H - PAD.top - PAD.bottom;
  const slot = (W - PAD.left - PAD.right) / ms.length;
  const total = ms.reduce((a, m) => a + m.x509 + m.jwt, 0);
  const label = `SVIDs issued per minute, last ${ms.length} minutes: ${total} in all; this minute ${ms.at(-1)?.x509 ?? 0} X.509 and ${ms.at(-1)?.jwt ?? 0} JWT.`;
  return html`<svg class="chart" id="svid-chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label}>
    <title>${label}</title>
    <${Axis} max=${max} unit="" />
    ${ms.map((m, i) => {
      const x = PAD.left + i * slot + slot * 0.15;
      const w = slot * 0.7;
      const hx = (plotH * m.x509) / max;
      const hj = (plotH * m.jwt) / max;
      return html`<g>
        ${m.x509 > 0 ? html`<rect class="bar x509" x=${x} y=${H - PAD.bottom - hx} width=${w} height=${hx} />` : null}
        ${m.jwt > 0 ? html`<rect class="bar jwt" x=${x} y=${H - PAD.bottom - hx - hj} width=${w} height=${hj} />` : null}
      </g>`;
    })}
    <text class="tick" x=${PAD.left} y=${H - 6}>${hhmm(ms[0]?.start ?? 0)}</text>
    <text class="tick" x=${W - PAD.right} y=${H - 6} text-anchor="end">${hhmm(ms.at(-1)?.start ?? 0)}</text>
  </svg>`;
}

/** p50 and p99 of the signing time per minute, one line each per SVID type (minutes without signings leave gaps). */
function LatencyChart(props: { minutes: Minute[] }): VNode {
  const ms = props.minutes;
  const series: { key: keyof Minute; cls: string; name: string }[] = [
    { key: 'x509P50Ms', cls: 'x509 p50', name: 'X.509 p50' },
    { key: 'x509P99Ms', cls: 'x509 p99', name: 'X.509 p99' },
    { key: 'jwtP50Ms', cls: 'jwt p50', name: 'JWT p50' },
    { key: 'jwtP99Ms', cls: 'jwt p99', name: 'JWT p99' },
  ];
  const values = ms.flatMap((m) => series.map((s) => m[s.key] as number | null)).filter((v): v is number => v !== null);
  const max = niceMax(Math.max(0, ...values));
  const plotH = H - PAD.top - PAD.bottom;
  const slot = (W - PAD.left - PAD.right) / ms.length;
  // Each type's latest minute with signings (X.509 and JWT signings often fall in different minutes).
  const lastX509 = [...ms].reverse().find((m) => m.x509P50Ms !== null);
  const lastJwt = [...ms].reverse().find((m) => m.jwtP50Ms !== null);
  const part = (name: string, m: Minute | undefined, p50: number | null | undefined, p99: number | null | undefined): string =>
    m === undefined ? `${name}: none signed` : `${name} p50 ${fmtMs(p50 ?? null)}, p99 ${fmtMs(p99 ?? null)} (${hhmm(m.start)})`;
  const label = `Signing time per minute, latest minute with signings of each type: ${part('X.509', lastX509, lastX509?.x509P50Ms, lastX509?.x509P99Ms)}; ${part('JWT', lastJwt, lastJwt?.jwtP50Ms, lastJwt?.jwtP99Ms)}.`;
  return html`<svg class="chart" id="latency-chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label}>
    <title>${label}</title>
    <${Axis} max=${max} unit=" ms" />
    ${series.map((s) =>
      ms.map((m, i) => {
        const v = m[s.key] as number | null;
        if (v === null) return null;
        const cx = PAD.left + (i + 0.5) * slot;
        return html`<circle class=${`dot ${s.cls}`} cx=${cx} cy=${PAD.top + plotH * (1 - v / max)} r=${s.cls.includes('p99') ? 3 : 2.2}
          ><title>${`${s.name} ${hhmm(m.start)}: ${fmtMs(v)}`}</title></circle
        >`;
      }),
    )}
  </svg>`;
}

function Legend(props: { items: { cls: string; name: string }[] }): VNode {
  return html`<p class="legend" aria-hidden="true">
    ${props.items.map(
      (i) =>
        html`<span class="key"
          ><svg viewBox="0 0 10 10" class="swatch"><rect class=${`bar ${i.cls}`} width="10" height="10" /></svg>${i.name}</span
        >`,
    )}
  </p>`;
}

function Traffic(props: { metrics: DashboardData['metrics'] }): VNode {
  const m = props.metrics;
  if (!m.configured) {
    return html`<div id="metrics-off" class="notice">
      <p><strong>SVIDs issued per minute and signing times are off:</strong> the console has no metrics source.</p>
      <p class="hint">${m.hint}</p>
    </div>`;
  }
  const shown = m.minutes.slice(-SHOWN_MINUTES);
  const now = shown.at(-1);
  const withTraffic = [...shown].reverse().filter((x) => x.x509 + x.jwt > 0);
  return html`<div id="traffic">
    <p class="hint">
      From <span class="mono">${m.url}</span>, scraped every ${m.intervalSeconds}
      s${m.lastScrapeAt > 0 ? `, last at ${new Date(m.lastScrapeAt).toISOString().slice(11, 19)}Z` : ''}.
    </p>
    ${m.error === '' ? null : html`<p class="error" role="alert" id="metrics-error">The last scrape failed: ${m.error}</p>`}
    ${m.hasMinted || m.lastScrapeAt === 0 ? null : html`<p class="error">The endpoint serves no ztwim_server_svids_minted_total: is it a ztwim server's?</p>`}
    <dl class="facts">
      <dt>X.509-SVIDs this minute</dt>
      <dd id="svids-x509-minute">${now?.x509 ?? 0}</dd>
      <dt>JWT-SVIDs this minute</dt>
      <dd id="svids-jwt-minute">${now?.jwt ?? 0}</dd>
    </dl>
    <h3>SVIDs issued per minute</h3>
    <${Legend}
      items=${[
        { cls: 'x509', name: 'X.509' },
        { cls: 'jwt', name: 'JWT' },
      ]}
    />
    <${SvidChart} minutes=${shown} />
    <h3>Signing time (p50 small dots, p99 large)</h3>
    ${m.hasSignDuration || m.lastScrapeAt === 0 ? null : html`<p class="hint">This server serves no signing-time histogram (ztwim_server_server_ca_sign_duration_seconds).</p>`}
    <${LatencyChart} minutes=${shown} />
    <details>
      <summary>Minutes with SVIDs issued (table)</summary>
      <div class="table-wrap">
        <table id="svid-table">
          <thead>
            <tr>
              <th>Minute (UTC)</th>
              <th>X.509</th>
              <th>JWT</th>
              <th>X.509 p50 / p99</th>
              <th>JWT p50 / p99</th>
            </tr>
          </thead>
          <tbody>
            ${withTraffic.map(
              (x) =>
                html`<tr>
                  <td>${hhmm(x.start)}</td>
                  <td class="x509-count">${x.x509}</td>
                  <td class="jwt-count">${x.jwt}</td>
                  <td>${fmtMs(x.x509P50Ms)} / ${fmtMs(x.x509P99Ms)}</td>
                  <td>${fmtMs(x.jwtP50Ms)} / ${fmtMs(x.jwtP99Ms)}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
    </details>
  </div>`;
}

function EntriesPerAgent(props: { data: DashboardData['entriesPerAgent'] }): VNode {
  const d = props.data;
  if ('error' in d) return html`<p class="error" role="alert">Entries per agent: ${d.error}</p>`;
  if ('pending' in d) return html`<p id="entries-per-agent-pending">Counting the entries of every agent… (shown at the next refresh)</p>`;
  const top = d.rows.slice(0, 10);
  const max = niceMax(Math.max(1, ...top.map((r) => r.entries)));
  const rowH = 22;
  const labelW = 0;
  const height = top.length * rowH + 4;
  const label = `Entries per agent, top ${top.length} of ${d.agents} agents: ${top.map((r) => `${r.agentId} ${r.entries}`).join('; ')}.`;
  return html`<div id="entries-per-agent">
    <p class="hint">
      ${d.entries} entries, ${d.agents} agents; counted at ${new Date(d.computedAt).toISOString().slice(11, 19)}Z in ${d.tookMs} ms (recounted when the server
      changes, at most every 30 s).
    </p>
    ${
      top.length === 0
        ? null
        : html`<svg class="chart" viewBox=${`0 0 ${W} ${height}`} role="img" aria-label=${label}>
            <title>${label}</title>
            ${top.map(
              (r, i) =>
                html`<g>
                  <rect class="bar agent" x=${labelW} y=${i * rowH + 2} height=${rowH - 6} width=${Math.max(1, ((W - 60) * r.entries) / max)} />
                  <text x=${labelW + 4} y=${i * rowH + 15}>${r.agentId.replace(/^spiffe:\/\/[^/]+/, '')}</text>
                  <text x=${W - 4} y=${i * rowH + 15} text-anchor="end">${r.entries}</text>
                </g>`,
            )}
          </svg>`
    }
    <div class="table-wrap">
      <table id="entries-per-agent-table">
        <thead>
          <tr>
            <th>Agent</th>
            <th>Entries it is authorised for</th>
          </tr>
        </thead>
        <tbody>
          ${d.rows.map(
            (r) =>
              html`<tr>
                <td class="mono">${r.agentId}</td>
                <td>${r.entries}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
  </div>`;
}

/** " (active)" etc. after an authority's name; nothing for a key whose state the server does not tell. */
const stateNote = (a: TimelineAuthority): string => (a.state === '' ? '' : ` (${a.state})`);

/** Every authority of the bundle from its not-before to its expiry, on one axis with "now", marked with its state. */
export function CaTimeline(props: { authorities: TimelineAuthority[]; now: number }): VNode {
  const as = props.authorities;
  const now = props.now;
  if (as.length === 0) return html`<p>No authorities in the bundle.</p>`;
  const known = as.filter((a) => a.notBefore > 0).map((a) => a.notBefore);
  const start = Math.min(now - 3600, ...known, ...as.map((a) => a.expiresAt - 86_400));
  const end = Math.max(now + 3600, ...as.map((a) => a.expiresAt));
  const labelW = 170;
  const rowH = 24;
  const top = 16; // room for the "now" label above the rows
  const height = top + as.length * rowH + 18;
  const x = (t: number): number => labelW + ((W - labelW - PAD.right) * (t - start)) / (end - start);
  const label = `CA rotation timeline, now ${new Date(now * 1000).toISOString()}: ${as
    .map(
      (a) => `${a.kind} ${a.name}${stateNote(a)} from ${a.notBefore > 0 ? day(a.notBefore) : 'unknown'} to ${day(a.expiresAt)}${a.tainted ? ', tainted' : ''}`,
    )
    .join('; ')}.`;
  return html`<svg class="chart timeline" id="ca-timeline" viewBox=${`0 0 ${W} ${height}`} role="img" aria-label=${label}>
    <title>${label}</title>
    ${as.map((a, i) => {
      const from = a.notBefore > 0 ? a.notBefore : start;
      const cls = `span ${a.kind}${a.state === '' ? '' : ` state-${a.state}`}${a.tainted ? ' tainted' : ''}${a.expiresAt < now ? ' expired' : ''}${a.notBefore > 0 ? '' : ' open-start'}`;
      // the state after the name takes room: a shorter name then (the full one is in the title)
      const max = a.state === '' ? 18 : 11;
      const short = a.name.length > max ? `${a.name.slice(0, max - 1)}…` : a.name;
      return html`<g>
        <text x="0" y=${top + i * rowH + 16} class="row-label">${`${a.kind === 'jwt' ? 'JWT' : 'X.509'} ${short}${a.state === '' ? '' : ` ${a.state}`}`}</text>
        <rect class=${cls} x=${x(from)} y=${top + i * rowH + 5} width=${Math.max(2, x(a.expiresAt) - x(from))} height=${rowH - 10} rx="3">
          <title>
            ${`${a.kind} ${a.name}${stateNote(a)}: ${a.notBefore > 0 ? new Date(a.notBefore * 1000).toISOString() : 'start unknown'} → ${new Date(a.expiresAt * 1000).toISOString()}${a.tainted ? ' (tainted)' : ''}`}
          </title>
        </rect>
      </g>`;
    })}
    <line class="now" x1=${x(now)} x2=${x(now)} y1=${top - 2} y2=${height - 16} />
    <text class="now-label" x=${x(now)} y="11" text-anchor="middle">now</text>
    <text class="tick" x=${labelW} y=${height - 4}>${day(start)}</text>
    <text class="tick" x=${W - PAD.right} y=${height - 4} text-anchor="end">${day(end)}</text>
  </svg>`;
}

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { credentials: 'same-origin' });
  const data = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new Error(data.error ?? `${res.status}`);
  return data;
}

/** Traffic and entries per agent, reloaded on live updates and every 10 s while shown. */
export function DashboardCharts(props: { version: number }): VNode {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 10_000);
    return () => clearInterval(t);
  }, []);
  const { data, error } = useLoad(() => getJson<DashboardData>('/api/dashboard'), [props.version, tick]);
  return html`<div>
    <h2>SVIDs issued</h2>
    ${error === '' ? null : html`<p class="error" role="alert">${error}</p>`}
    ${data === undefined ? html`<p>Loading…</p>` : html`<${Traffic} metrics=${data.metrics} />`}
    <h2>Entries per agent</h2>
    ${data === undefined ? null : html`<${EntriesPerAgent} data=${data.entriesPerAgent} />`}
  </div>`;
}
