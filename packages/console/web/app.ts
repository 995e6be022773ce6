// The console's single-page app: preact + htm (no build-time JSX), bundled by esbuild into
// dist/web/app.js (scripts/build-console.mjs). Every value from the server is rendered as text
// by preact (no innerHTML anywhere), the page runs under a CSP without inline script or style,
// and every state change sends the session's CSRF token.
import { h, render, type ComponentChildren, type VNode } from 'preact';
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import htm from 'htm';
import { CaTimeline, DashboardCharts } from './dashboard.ts';
import { useLoad } from './use-load.ts';

const html = htm.bind(h) as (strings: TemplateStringsArray, ...values: unknown[]) => VNode;

interface Selector {
  type: string;
  value: string;
}
interface Entry {
  id: string;
  spiffeId: string;
  parentId: string;
  selectors: Selector[];
  federatesWith: string[];
  expiresAt: number;
  hint: string;
  x509SvidTtl: number;
  jwtSvidTtl: number;
  dnsNames: string[];
  admin: boolean;
  downstream: boolean;
}
interface Agent {
  id: string;
  attestationType: string;
  selectors: Selector[];
  serialNumber: string;
  expiresAt: number;
  banned: boolean;
  canReattest: boolean;
  lastSeen?: number;
}
interface Authority {
  kind: string;
  name: string;
  authorityId: string;
  notBefore: number;
  expiresAt: number;
  tainted: boolean;
  /** active, prepared or old on this server; '' for another server's key or an upstream root. */
  state: string;
}
interface LocalAuthority {
  kind: string;
  authorityId: string;
  state: string;
  expiresAt: number;
  upstreamAuthorityId: string;
}
interface ServerInfo {
  trustDomain: string;
  serverId: string;
  uptimeSeconds: number;
  agents: number;
  entries: number;
  authorities: Authority[];
  localAuthorities: LocalAuthority[];
  localAuthorityError?: string;
  bundleSequence: string;
  refreshHintSeconds: number;
  about?: About;
  serverInfoError?: string;
}
interface About {
  version: string;
  plugins: { type: string; name: string; detail: string }[];
  serving: boolean;
  reason: string;
  datastoreLastSuccess: number;
  datastoreHost: string;
}
interface Page<T> {
  items: T[];
  nextPageToken: string;
}
interface Explanation {
  agentId: string;
  aliases: string[];
  reachable: number;
  matched: Entry[];
  expired: string[];
  federatesWith: string[];
  nearMisses: { entry: Entry; missing: Selector[] }[];
  unmatched: number;
  outOfReach: Entry[];
  workloadSelectors: Selector[];
}

let csrf = '';

class ApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  let data: unknown = {};
  try {
    data = text === '' ? {} : JSON.parse(text);
  } catch {
    data = { error: text };
  }
  if (!res.ok) throw new ApiError((data as { error?: string }).error ?? `${res.status}`, res.status);
  return data as T;
}

const sel = (s: Selector): string => `${s.type}:${s.value}`;
const when = (unix: number): string => (unix > 0 ? new Date(unix * 1000).toISOString().replace('.000Z', 'Z') : '—');
function parseSelector(text: string): Selector | undefined {
  const t = text.trim();
  const i = t.indexOf(':');
  if (i <= 0 || i === t.length - 1) return undefined;
  return { type: t.slice(0, i), value: t.slice(i + 1) };
}

/** The selector kinds each workload attestor produces (SPIRE's plugin docs). */
const SELECTOR_KINDS: Record<string, string[]> = {
  unix: ['uid:', 'user:', 'gid:', 'group:', 'supplementary_gid:', 'supplementary_group:', 'path:', 'sha256:'],
  k8s: ['ns:', 'sa:', 'pod-label:', 'pod-name:', 'pod-uid:', 'pod-image:', 'pod-image-count:', 'container-name:', 'container-image:', 'node-name:'],
  docker: ['label:', 'image_id:', 'env:'],
  systemd: ['id:', 'fragment_path:'],
  spiffe_id: [''],
};

function ErrorLine(props: { error: string }): VNode | null {
  return props.error === '' ? null : html`<p class="error" role="alert">${props.error}</p>`;
}

function Chips(props: { selectors: Selector[]; onRemove?: (i: number) => void; missing?: Selector[] }): VNode {
  const missing = new Set((props.missing ?? []).map(sel));
  return html`<span class="chips">
    ${props.selectors.map(
      (s, i) =>
        html`<span class=${missing.has(sel(s)) ? 'chip missing' : 'chip'}
          >${sel(s)}${
            props.onRemove === undefined
              ? null
              : html`<button type="button" class="chip-x" aria-label=${`remove ${sel(s)}`} onClick=${() => props.onRemove?.(i)}>×</button>`
          }</span
        >`,
    )}
  </span>`;
}

/** Type → kind → value, adding one selector at a time (or a typed `type:value`). */
function SelectorBuilder(props: { selectors: Selector[]; onChange: (s: Selector[]) => void; id: string }): VNode {
  const [type, setType] = useState('unix');
  const [kind, setKind] = useState('uid:');
  const [value, setValue] = useState('');
  const add = (): void => {
    const typed = value.includes(':') && kind === '' ? parseSelector(value) : undefined;
    const s = typed ?? (value.trim() === '' ? undefined : { type, value: `${kind}${value.trim()}` });
    if (s === undefined) return;
    if (!props.selectors.some((x) => sel(x) === sel(s))) props.onChange([...props.selectors, s]);
    setValue('');
  };
  return html`<div class="builder">
    <label
      >Type
      <select
        id=${`${props.id}-type`}
        value=${type}
        onChange=${(e: Event) => {
          const t = (e.target as HTMLSelectElement).value;
          setType(t);
          setKind(SELECTOR_KINDS[t]?.[0] ?? '');
        }}
      >
        ${Object.keys(SELECTOR_KINDS).map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label
    >
    <label
      >Kind
      <select id=${`${props.id}-kind`} value=${kind} onChange=${(e: Event) => setKind((e.target as HTMLSelectElement).value)}>
        ${(SELECTOR_KINDS[type] ?? ['']).map((k) => html`<option value=${k}>${k === '' ? '(value)' : k.slice(0, -1)}</option>`)}
      </select></label
    >
    <label
      >Value
      <input
        id=${`${props.id}-value`}
        value=${value}
        onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)}
        onKeyDown=${(e: KeyboardEvent) => {
          if (e.key === 'Enter') {
            e.preventDefault();
            add();
          }
        }}
    /></label>
    <button type="button" id=${`${props.id}-add`} onClick=${add}>Add selector</button>
    <${Chips} selectors=${props.selectors} onRemove=${(i: number) => props.onChange(props.selectors.filter((_, j) => j !== i))} />
  </div>`;
}

function Login(props: { onLogin: (role: string) => void }): VNode {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  // Which logins this console offers: a login token, OIDC at an external provider, or both.
  const [ways, setWays] = useState({ token: true, oidc: false });
  useEffect(() => {
    api<{ token: boolean; oidc: boolean }>('GET', '/api/login-options').then(setWays, () => undefined);
  }, []);
  const submit = async (t: string): Promise<void> => {
    try {
      const r = await api<{ role: string; csrf: string }>('POST', '/api/login', { token: t });
      csrf = r.csrf;
      props.onLogin(r.role);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m !== null) {
      history.replaceState(null, '', location.pathname);
      void submit(decodeURIComponent(m[1] as string));
    }
  }, []);
  const oidc = ways.oidc ? html`<p><a id="login-oidc" class="button" href="/oidc/login">Log in with OIDC</a></p>` : null;
  if (!ways.token)
    return html`<main class="login">
      <h1>ztwim console</h1>
      ${oidc}<${ErrorLine} error=${error} />
    </main>`;
  return html`<main class="login">
    <h1>ztwim console</h1>
    ${oidc}
    <form
      onSubmit=${(e: Event) => {
        e.preventDefault();
        void submit(token);
      }}
    >
      <label
        >Login token
        <input
          id="login-token"
          type="password"
          autocomplete="current-password"
          value=${token}
          onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)}
      /></label>
      <button id="login-submit" type="submit">Log in</button>
    </form>
    <${ErrorLine} error=${error} />
    <p class="hint">The token is printed by <code>ztwim console</code> or <code>ztwim up</code> when it starts.</p>
  </main>`;
}

/** Serving or not (the server's ready check), when it last read its datastore, and from which host. */
function HealthLine(props: { about: About }): VNode {
  const a = props.about;
  const seen = a.datastoreLastSuccess === 0 ? 'never' : when(a.datastoreLastSuccess);
  return html`<span class=${a.serving ? 'state state-active' : 'state state-error'}>${a.serving ? 'serving' : 'not serving'}</span>
    ${a.serving ? '' : ` ${a.reason}`} · datastore last read ${seen}${a.datastoreHost === '' ? '' : ` on ${a.datastoreHost}`}`;
}

function PluginsTable(props: { plugins: About['plugins'] }): VNode {
  return html`<h2>Plugins</h2>
    <table id="server-plugins">
      <thead>
        <tr>
          <th>Type</th>
          <th>Name</th>
          <th>Set up</th>
        </tr>
      </thead>
      <tbody>
        ${props.plugins.map(
          (p) =>
            html`<tr>
              <td>${p.type}</td>
              <td class="mono">${p.name}</td>
              <td>${p.detail}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}

function Dashboard(props: { version: number }): VNode {
  const { data, error } = useLoad(() => api<ServerInfo>('GET', '/api/server'), [props.version]);
  if (data === undefined) return html`<${ErrorLine} error=${error} />`;
  const now = Date.now() / 1000;
  const span = Math.max(...data.authorities.map((a) => a.expiresAt - now), 1);
  return html`<section>
    <h2>Server</h2>
    <dl class="facts">
      <dt>Trust domain</dt>
      <dd id="server-td">${data.trustDomain}</dd>
      <dt>Server ID</dt>
      <dd>${data.serverId}</dd>
      <dt>Uptime</dt>
      <dd>${Math.round(data.uptimeSeconds)} s</dd>
      <dt>Agents</dt>
      <dd id="server-agents">${data.agents}</dd>
      <dt>Entries</dt>
      <dd id="server-entries">${data.entries}</dd>
      <dt>Bundle sequence</dt>
      <dd>${data.bundleSequence} (refresh hint ${data.refreshHintSeconds} s)</dd>
      ${
        data.about === undefined
          ? null
          : html`<dt>Version</dt>
              <dd id="server-version">${data.about.version}</dd>`
      }
      ${
        data.about === undefined
          ? null
          : html`<dt>Health</dt>
              <dd id="server-health"><${HealthLine} about=${data.about} /></dd>`
      }
    </dl>
    ${data.about === undefined ? html`<p class="hint" id="server-info-error">Version, plugins and health unavailable: ${data.serverInfoError ?? ''}</p>` : html`<${PluginsTable} plugins=${data.about.plugins} />`}
    <${DashboardCharts} version=${props.version} />
    <h2>CA rotation timeline</h2>
    <p class="hint">
      Every X.509 and JWT authority of the bundle, marked with its state on this server (active: signing; prepared: published, not signing yet; old: signed
      before the last activation); a JWT key's start is not published.
    </p>
    <${CaTimeline} authorities=${data.authorities} now=${Math.floor(now)} />
    <h2>This server's authorities</h2>
    ${
      data.localAuthorityError === undefined
        ? html`<table id="local-authorities">
            <thead>
              <tr>
                <th>Kind</th>
                <th>State</th>
                <th>Authority ID</th>
                <th>Expires</th>
                <th>Upstream authority</th>
              </tr>
            </thead>
            <tbody>
              ${data.localAuthorities.map(
                (a) =>
                  html`<tr class=${`local-${a.kind} local-${a.state}`}>
                    <td>${a.kind === 'jwt' ? 'JWT' : 'X.509'}</td>
                    <td><span class=${`state state-${a.state}`}>${a.state}</span></td>
                    <td class="mono">${a.authorityId}</td>
                    <td>${when(a.expiresAt)}</td>
                    <td class="mono">${a.upstreamAuthorityId === '' ? '—' : a.upstreamAuthorityId}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p class="hint" id="local-authorities-error">Key states unavailable: ${data.localAuthorityError}</p>`
    }
    <h2>Keys and their expiry</h2>
    <table>
      <thead>
        <tr>
          <th>Kind</th>
          <th>Subject / key ID</th>
          <th>Not before</th>
          <th>Expires</th>
          <th>State</th>
          <th>Tainted</th>
          <th>Time left</th>
        </tr>
      </thead>
      <tbody>
        ${data.authorities.map(
          (a) =>
            html`<tr>
              <td>${a.kind}</td>
              <td class="mono">${a.name}</td>
              <td>${when(a.notBefore)}</td>
              <td>${when(a.expiresAt)}</td>
              <td>${a.state === '' ? '—' : html`<span class=${`state state-${a.state}`}>${a.state}</span>`}</td>
              <td>${a.tainted ? 'yes' : 'no'}</td>
              <td><meter min="0" max=${span} value=${Math.max(0, a.expiresAt - now)}></meter></td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

function Agents(props: { version: number; admin: boolean }): VNode {
  const [token, setToken] = useState('');
  const { data, error, reload } = useLoad(() => api<Page<Agent>>('GET', '/api/agents?pageSize=1000'), [props.version]);
  const [actionError, setActionError] = useState('');
  const [ttl, setTtl] = useState('600');
  const [alias, setAlias] = useState('');
  const act = async (what: 'ban' | 'evict', id: string): Promise<void> => {
    if (!confirm(`${what === 'ban' ? 'Ban' : 'Evict'} ${id}?`)) return;
    try {
      await api('POST', `/api/agents/${what}`, { id });
      reload();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };
  return html`<section>
    <h2>Agents</h2>
    <${ErrorLine} error=${error || actionError} />
    <table id="agents">
      <thead>
        <tr>
          <th>SPIFFE ID</th>
          <th>Attestation</th>
          <th>Selectors</th>
          <th>Serial</th>
          <th>SVID expires</th>
          <th>Banned</th>
          <th>Can re-attest</th>
          <th>Last seen</th>
          ${props.admin ? html`<th>Actions</th>` : null}
        </tr>
      </thead>
      <tbody>
        ${(data?.items ?? []).map(
          (a) =>
            html`<tr>
              <td class="mono">${a.id}</td>
              <td>${a.attestationType}</td>
              <td><${Chips} selectors=${a.selectors} /></td>
              <td class="mono">${a.serialNumber}</td>
              <td>${when(a.expiresAt)}</td>
              <td>${a.banned ? 'yes' : 'no'}</td>
              <td>${a.canReattest ? 'yes' : 'no'}</td>
              <td class="last-seen">${a.lastSeen === undefined ? '—' : when(a.lastSeen)}</td>
              ${
                props.admin
                  ? html`<td class="actions">
                      <button type="button" class="ban" disabled=${a.banned} onClick=${() => void act('ban', a.id)}>Ban</button>
                      <button type="button" class="evict" onClick=${() => void act('evict', a.id)}>Evict</button>
                    </td>`
                  : null
              }
            </tr>`,
        )}
      </tbody>
    </table>
    ${
      props.admin
        ? html`<form
            class="inline"
            onSubmit=${async (e: Event) => {
              e.preventDefault();
              try {
                const r = await api<{ token: string }>('POST', '/api/join-tokens', { ttl: Number(ttl), agentId: alias });
                setToken(r.token);
              } catch (err) {
                setActionError((err as Error).message);
              }
            }}
          >
            <h3>Join token</h3>
            <label>TTL (s) <input value=${ttl} inputmode="numeric" onInput=${(e: Event) => setTtl((e.target as HTMLInputElement).value)} /></label>
            <label>Alias SPIFFE ID (optional) <input value=${alias} onInput=${(e: Event) => setAlias((e.target as HTMLInputElement).value)} /></label>
            <button type="submit">Create join token</button>
            ${token === '' ? null : html`<output class="mono" id="join-token">${token}</output>`}
          </form>`
        : null
    }
  </section>`;
}

const EMPTY_FORM = { id: '', spiffeId: '', parentId: '', selectors: [] as Selector[], federatesWith: '', dnsNames: '', x509SvidTtl: '', hint: '' };

function EntryForm(props: { initial: typeof EMPTY_FORM; onDone: () => void }): VNode {
  const [f, setF] = useState(props.initial);
  const [error, setError] = useState('');
  useEffect(() => setF(props.initial), [props.initial]);
  const set = (k: keyof typeof EMPTY_FORM) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const list = (s: string): string[] =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const body = {
      spiffeId: f.spiffeId.trim(),
      parentId: f.parentId.trim(),
      selectors: f.selectors,
      federatesWith: list(f.federatesWith),
      dnsNames: list(f.dnsNames),
      hint: f.hint,
      ...(f.x509SvidTtl.trim() === '' ? {} : { x509SvidTtl: Number(f.x509SvidTtl) }),
    };
    try {
      if (f.id === '') {
        const r = await api<{ results: { ok: boolean; message: string }[] }>('POST', '/api/entries', { entries: [body] });
        const bad = r.results.find((x) => !x.ok);
        if (bad !== undefined) throw new Error(bad.message);
      } else {
        await api('PUT', `/api/entries/${encodeURIComponent(f.id)}`, body);
      }
      setError('');
      setF(EMPTY_FORM);
      props.onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return html`<form class="entry-form" id="entry-form" onSubmit=${submit}>
    <h3>${f.id === '' ? 'New entry' : `Edit entry ${f.id}`}</h3>
    <label>SPIFFE ID <input id="entry-spiffe-id" required value=${f.spiffeId} onInput=${set('spiffeId')} placeholder="spiffe://example.org/myservice" /></label>
    <label>Parent ID <input id="entry-parent-id" required value=${f.parentId} onInput=${set('parentId')} placeholder="spiffe://example.org/host" /></label>
    <${SelectorBuilder} id="entry-sel" selectors=${f.selectors} onChange=${(s: Selector[]) => setF({ ...f, selectors: s })} />
    <label>Federates with (comma-separated) <input value=${f.federatesWith} onInput=${set('federatesWith')} /></label>
    <label>DNS names (comma-separated) <input value=${f.dnsNames} onInput=${set('dnsNames')} /></label>
    <label>X509-SVID TTL (s) <input value=${f.x509SvidTtl} inputmode="numeric" onInput=${set('x509SvidTtl')} /></label>
    <label>Hint <input value=${f.hint} onInput=${set('hint')} /></label>
    <button id="entry-submit" type="submit">${f.id === '' ? 'Create entry' : 'Save entry'}</button>
    ${f.id === '' ? null : html`<button type="button" onClick=${() => setF(EMPTY_FORM)}>Cancel</button>`}
    <${ErrorLine} error=${error} />
  </form>`;
}

function Entries(props: { version: number; admin: boolean }): VNode {
  const [filter, setFilter] = useState({ spiffeId: '', parentId: '', selector: '', federatesWith: '' });
  const [applied, setApplied] = useState(filter);
  const [tokens, setTokens] = useState<string[]>(['']);
  const [editing, setEditing] = useState(EMPTY_FORM);
  const [importText, setImportText] = useState('');
  const [message, setMessage] = useState('');
  const page = tokens[tokens.length - 1] ?? '';
  const query = useMemo(() => {
    const q = new URLSearchParams({ pageSize: '50', pageToken: page });
    for (const [k, v] of Object.entries(applied)) if (v !== '') q.set(k, v);
    return q.toString();
  }, [applied, page]);
  const { data, error, reload } = useLoad(() => api<Page<Entry>>('GET', `/api/entries?${query}`), [query, props.version]);
  const del = async (e: Entry): Promise<void> => {
    if (!confirm(`Delete entry ${e.id} (${e.spiffeId})?`)) return;
    try {
      await api('DELETE', `/api/entries/${encodeURIComponent(e.id)}`);
      reload();
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  const setF = (k: keyof typeof filter) => (e: Event) => setFilter({ ...filter, [k]: (e.target as HTMLInputElement).value });
  return html`<section>
    <h2>Entries</h2>
    <form
      class="filters"
      onSubmit=${(e: Event) => {
        e.preventDefault();
        setTokens(['']);
        setApplied(filter);
      }}
    >
      <label>SPIFFE ID <input id="filter-spiffe-id" value=${filter.spiffeId} onInput=${setF('spiffeId')} /></label>
      <label>Parent ID <input id="filter-parent-id" value=${filter.parentId} onInput=${setF('parentId')} /></label>
      <label>Selector <input id="filter-selector" value=${filter.selector} onInput=${setF('selector')} placeholder="unix:uid:1000" /></label>
      <label>Federated domain <input value=${filter.federatesWith} onInput=${setF('federatesWith')} /></label>
      <button id="filter-apply" type="submit">Filter</button>
    </form>
    <${ErrorLine} error=${error || message} />
    <div class="table-wrap">
      <table id="entries">
        <thead>
          <tr>
            <th>SPIFFE ID</th>
            <th>Parent ID</th>
            <th>Selectors</th>
            <th>Federates with</th>
            <th>Entry ID</th>
            ${props.admin ? html`<th>Actions</th>` : null}
          </tr>
        </thead>
        <tbody>
          ${(data?.items ?? []).map(
            (e) =>
              html`<tr>
                <td class="mono spiffe-id">${e.spiffeId}</td>
                <td class="mono">${e.parentId}</td>
                <td><${Chips} selectors=${e.selectors} /></td>
                <td>${e.federatesWith.join(', ')}</td>
                <td class="mono">${e.id}</td>
                ${
                  props.admin
                    ? html`<td class="actions">
                        <button
                          type="button"
                          onClick=${() =>
                            setEditing({
                              id: e.id,
                              spiffeId: e.spiffeId,
                              parentId: e.parentId,
                              selectors: e.selectors,
                              federatesWith: e.federatesWith.join(', '),
                              dnsNames: e.dnsNames.join(', '),
                              x509SvidTtl: e.x509SvidTtl === 0 ? '' : String(e.x509SvidTtl),
                              hint: e.hint,
                            })}
                        >
                          Edit
                        </button>
                        <button type="button" class="delete" onClick=${() => void del(e)}>Delete</button>
                      </td>`
                    : null
                }
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <nav class="pager">
      <button type="button" disabled=${tokens.length < 2} onClick=${() => setTokens(tokens.slice(0, -1))}>Previous</button>
      <span>Page ${tokens.length}</span>
      <button type="button" id="next-page" disabled=${(data?.nextPageToken ?? '') === ''} onClick=${() => setTokens([...tokens, data?.nextPageToken ?? ''])}>
        Next
      </button>
      <a href="/api/entries/export" download="entries.json">Export all as JSON</a>
    </nav>
    ${
      props.admin
        ? html`<${EntryForm} initial=${editing} onDone=${reload} />
            <form
              class="import"
              onSubmit=${async (e: Event) => {
                e.preventDefault();
                try {
                  const r = await api<{ results: { ok: boolean; message: string }[] }>('POST', '/api/entries', JSON.parse(importText));
                  const failed = r.results.filter((x) => !x.ok);
                  setMessage(
                    `${r.results.length - failed.length} created, ${failed.length} failed${failed.length === 0 ? '' : `: ${failed.map((x) => x.message).join('; ')}`}`,
                  );
                  reload();
                } catch (err) {
                  setMessage((err as Error).message);
                }
              }}
            >
              <h3>Import (the <code>entry create -data</code> JSON)</h3>
              <textarea rows="4" value=${importText} onInput=${(e: Event) => setImportText((e.target as HTMLTextAreaElement).value)}></textarea>
              <button type="submit">Import</button>
            </form>`
        : null
    }
  </section>`;
}

/** Admin form: create or replace a federated bundle from pasted PEM or SPIFFE bundle JSON (as `bundle set`). */
function SetFederatedBundle(props: { onDone: () => void }): VNode {
  const [td, setTd] = useState('');
  const [format, setFormat] = useState('spiffe');
  const [data, setData] = useState('');
  const [error, setError] = useState('');
  return html`<form
    id="set-bundle"
    onSubmit=${async (e: Event) => {
      e.preventDefault();
      try {
        await api('POST', '/api/federated-bundles', { trustDomain: td, format, data });
        setError('');
        setData('');
        props.onDone();
      } catch (err) {
        setError((err as Error).message);
      }
    }}
  >
    <h3>Set a federated bundle</h3>
    <label
      >Trust domain
      <input id="set-bundle-td" required value=${td} placeholder="partner.example" onInput=${(e: Event) => setTd((e.target as HTMLInputElement).value)}
    /></label>
    <label
      >Format
      <select id="set-bundle-format" value=${format} onChange=${(e: Event) => setFormat((e.target as HTMLSelectElement).value)}>
        <option value="spiffe">SPIFFE bundle (JSON)</option>
        <option value="pem">PEM certificates</option>
      </select></label
    >
    <label
      >Bundle data
      <textarea id="set-bundle-data" required rows="6" value=${data} onInput=${(e: Event) => setData((e.target as HTMLTextAreaElement).value)}></textarea>
    </label>
    <button type="submit" id="set-bundle-submit">Set bundle</button>
    <${ErrorLine} error=${error} />
  </form>`;
}

function BundlePage(props: { version: number; admin: boolean }): VNode {
  const { data, error } = useLoad(() => api<ServerInfo>('GET', '/api/server'), [props.version]);
  const [actionError, setActionError] = useState('');
  const fed = useLoad(
    () =>
      api<{
        relationships: { trustDomain: string; bundleEndpointUrl: string; profile: string; endpointSpiffeId: string }[];
        bundles: { trustDomain: string; authorities: Authority[] }[];
      }>('GET', '/api/federation'),
    [props.version],
  );
  return html`<section>
    <h2>Trust bundle of ${data?.trustDomain ?? '…'}</h2>
    <${ErrorLine} error=${error || fed.error} />
    <p>
      <a href="/api/bundle?format=pem" download="bundle.pem">Download PEM</a> ·
      <a href="/api/bundle?format=spiffe" download="bundle.json">Download SPIFFE JSON</a>
    </p>
    <ul>
      ${(data?.authorities ?? []).map((a) => html`<li><span class="mono">${a.kind} ${a.name}</span>, expires ${when(a.expiresAt)}${a.tainted ? ' (tainted)' : ''}</li>`)}
    </ul>
    <h2>Federation relationships</h2>
    <table id="relationships">
      <thead>
        <tr>
          <th>Trust domain</th>
          <th>Bundle endpoint</th>
          <th>Profile</th>
          <th>Endpoint SPIFFE ID</th>
        </tr>
      </thead>
      <tbody>
        ${(fed.data?.relationships ?? []).map(
          (r) =>
            html`<tr>
              <td>${r.trustDomain}</td>
              <td class="mono">${r.bundleEndpointUrl}</td>
              <td>${r.profile}</td>
              <td class="mono">${r.endpointSpiffeId}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h2>Federated bundles</h2>
    <${ErrorLine} error=${actionError} />
    <table id="federated-bundles">
      <thead>
        <tr>
          <th>Trust domain</th>
          <th>Keys</th>
          <th>Download</th>
          ${props.admin ? html`<th>Actions</th>` : null}
        </tr>
      </thead>
      <tbody>
        ${(fed.data?.bundles ?? []).map(
          (b) =>
            html`<tr>
              <td class="mono">${b.trustDomain}</td>
              <td>${b.authorities.map((a) => `${a.kind} ${a.name}`).join('; ')}</td>
              <td>
                <a href=${`/api/bundle?format=pem&trustDomain=${encodeURIComponent(b.trustDomain)}`} download=${`${b.trustDomain}.pem`}>PEM</a> ·
                <a href=${`/api/bundle?format=spiffe&trustDomain=${encodeURIComponent(b.trustDomain)}`} download=${`${b.trustDomain}.json`}>SPIFFE JSON</a>
              </td>
              ${
                props.admin
                  ? html`<td class="actions">
                      <button
                        type="button"
                        class="delete-bundle"
                        onClick=${async () => {
                          if (!confirm(`Delete the federated bundle of ${b.trustDomain}?`)) return;
                          try {
                            await api('POST', '/api/federated-bundles/delete', { trustDomain: b.trustDomain });
                            setActionError('');
                            fed.reload();
                          } catch (err) {
                            setActionError((err as Error).message);
                          }
                        }}
                      >
                        Delete
                      </button>
                    </td>`
                  : null
              }
            </tr>`,
        )}
      </tbody>
    </table>
    ${props.admin ? html`<${SetFederatedBundle} onDone=${() => fed.reload()} />` : null}
  </section>`;
}

function ExplainPage(props: { version: number }): VNode {
  const agents = useLoad(() => api<Page<Agent>>('GET', '/api/agents?pageSize=1000'), [props.version]);
  const [agentId, setAgentId] = useState('');
  const [selectors, setSelectors] = useState<Selector[]>([]);
  const [pid, setPid] = useState('');
  const [result, setResult] = useState<Explanation | undefined>(undefined);
  const [error, setError] = useState('');
  const first = agents.data?.items[0]?.id ?? '';
  const chosen = agentId === '' ? first : agentId;
  const run = useCallback(async () => {
    try {
      const p = pid.trim() === '' ? {} : { pid: Number(pid) };
      setResult(await api<Explanation>('POST', '/api/explain', { agentId: chosen, selectors, ...p }));
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  }, [chosen, selectors, pid]);
  return html`<section>
    <h2>Explain: why has this workload no identity?</h2>
    <form
      onSubmit=${(e: Event) => {
        e.preventDefault();
        void run();
      }}
    >
      <label
        >Agent
        <select id="explain-agent" value=${chosen} onChange=${(e: Event) => setAgentId((e.target as HTMLSelectElement).value)}>
          ${(agents.data?.items ?? []).map((a) => html`<option value=${a.id}>${a.id}</option>`)}
        </select></label
      >
      <label
        >PID on the console's host (optional)
        <input id="explain-pid" inputmode="numeric" value=${pid} onInput=${(e: Event) => setPid((e.target as HTMLInputElement).value)}
      /></label>
      <${SelectorBuilder} id="explain-sel" selectors=${selectors} onChange=${setSelectors} />
      <button id="explain-run" type="submit">Explain</button>
    </form>
    <${ErrorLine} error=${error || agents.error} />
    ${
      result === undefined
        ? null
        : html`<div id="explain-result">
            <p id="explain-selectors">Workload selectors: <${Chips} selectors=${result.workloadSelectors} /></p>
            <p>${result.reachable} entries are in this agent's reach${result.aliases.length === 0 ? '' : ` (aliases: ${result.aliases.join(', ')})`}.</p>
            ${
              result.matched.length === 0
                ? html`<p class="verdict none">No identity issued: no entry in reach has all its selectors among the workload's.</p>`
                : html`<div class="verdict">
                    <p>The workload gets:</p>
                    <ul>
                      ${result.matched.map((e) => html`<li class="mono">${e.spiffeId}${result.expired.includes(e.id) ? ' (entry expired)' : ''}</li>`)}
                    </ul>
                  </div>`
            }
            ${
              result.nearMisses.length === 0
                ? null
                : html`<h3>Nearest entries (${result.nearMisses.length} of ${result.unmatched})</h3>
                    <ul id="near-misses">
                      ${result.nearMisses.map(
                        (m) =>
                          html`<li>
                            <span class="mono">${m.entry.spiffeId}</span> lacks <${Chips} selectors=${m.missing} missing=${m.missing} /> (has
                            <${Chips} selectors=${m.entry.selectors} missing=${m.missing} />)
                          </li>`,
                      )}
                    </ul>`
            }
            ${
              result.outOfReach.length === 0
                ? null
                : html`<h3>Matching entries out of this agent's reach</h3>
                    <ul id="out-of-reach">
                      ${result.outOfReach.map((e) => html`<li><span class="mono">${e.spiffeId}</span>: parent <span class="mono">${e.parentId}</span> is not this agent, an alias, or an entry in reach</li>`)}
                    </ul>`
            }
          </div>`
    }
  </section>`;
}

const PAGES: Record<string, { title: string; render: (p: { version: number; admin: boolean }) => ComponentChildren }> = {
  dashboard: { title: 'Dashboard', render: (p) => html`<${Dashboard} ...${p} />` },
  agents: { title: 'Agents', render: (p) => html`<${Agents} ...${p} />` },
  entries: { title: 'Entries', render: (p) => html`<${Entries} ...${p} />` },
  bundle: { title: 'Bundle & federation', render: (p) => html`<${BundlePage} ...${p} />` },
  explain: { title: 'Explain', render: (p) => html`<${ExplainPage} ...${p} />` },
};

function currentPage(): string {
  const name = location.hash.replace(/^#\/?/, '').split(/[?&]/)[0] ?? '';
  return name in PAGES ? name : 'dashboard';
}

function App(): VNode {
  const [role, setRole] = useState<string | undefined>(undefined);
  const [checked, setChecked] = useState(false);
  const [page, setPage] = useState(currentPage());
  const [version, setVersion] = useState(0);
  useEffect(() => {
    api<{ role: string; csrf: string }>('GET', '/api/session').then(
      (r) => {
        csrf = r.csrf;
        setRole(r.role);
        setChecked(true);
      },
      () => setChecked(true),
    );
    const onHash = (): void => setPage(currentPage());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    if (role === undefined) return;
    // Live updates: the server pushes `changed` when agents, entries or the bundle move.
    const es = new EventSource('/api/events');
    es.addEventListener('changed', () => setVersion((v) => v + 1));
    return () => es.close();
  }, [role]);
  if (!checked) return html`<p>Loading…</p>`;
  if (role === undefined) return html`<${Login} onLogin=${setRole} />`;
  const p = PAGES[page] ?? (PAGES['dashboard'] as (typeof PAGES)[string]);
  return html`<div class="app">
    <header>
      <span class="brand">ztwim</span>
      <nav>${Object.entries(PAGES).map(([k, v]) => html`<a href=${`#/${k}`} aria-current=${k === page ? 'page' : undefined}>${v.title}</a>`)}</nav>
      <span class="role" id="role">${role}</span>
      <button
        type="button"
        onClick=${async () => {
          const r = await api<{ redirect?: string }>('POST', '/api/logout');
          // An OIDC login also ends at the provider, where it has an end-session endpoint.
          if (r.redirect !== undefined) location.assign(r.redirect);
          else setRole(undefined);
        }}
      >
        Log out
      </button>
    </header>
    <main id="page">${p.render({ version, admin: role === 'admin' })}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app') as HTMLElement);
