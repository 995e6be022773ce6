// The console's HTTP surface: the web app's static files with a strict Content-Security-Policy,
// and a JSON API under /api/ where every call needs a session (cookie) and every state change
// its CSRF token (X-CSRF-Token) and the admin role. Errors are JSON `{ error }` with the status
// that names the cause (401 no session, 403 wrong role or CSRF, 400 bad input, 502 the server's
// admin API failed), never a stack trace.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import type { Clock, Logger } from '@ztwim/core';
import { ConnectError } from '@connectrpc/connect';
import { AdminApiError, bundlePem, bundleSpiffeJson, type AdminApi, type EntryInput, type SelectorView } from './admin.ts';
import { clearedSessionCookie, cookieValue, sessionCookie, SESSION_COOKIE, type Session, type Sessions } from './auth.ts';
import { explain } from './explain.ts';
import type { OidcLogin, OidcReply } from './oidc-login.ts';
import type { ChangeWatcher } from './changes.ts';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

const MAX_BODY = 4 << 20;
const MAX_PAGE = 1000;

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface ApiDeps {
  readonly admin: AdminApi;
  readonly sessions: Sessions;
  readonly staticDir: string;
  readonly secure: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  /** OIDC login to an external provider (/oidc/login, /oidc/callback), where configured. */
  readonly oidc?: Pick<OidcLogin, 'route' | 'logoutUrl'>;
  /** Live updates: one poll of the server for every open /api/events stream. */
  readonly changes: ChangeWatcher;
  /** GET /api/dashboard's answer (dashboard.ts). */
  readonly dashboard: () => Promise<unknown>;
}

function send(res: ServerResponse, status: number, body: string | Buffer, type: string, extra: Record<string, string | readonly string[]> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-store', ...extra });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8', extra);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) throw new HttpError(415, 'send the request body as application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `request body is not JSON: ${(e as Error).message}`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Record<string, unknown>, k: string, required = false): string {
  const v = o[k];
  if (v === undefined && !required) return '';
  if (typeof v !== 'string') throw new HttpError(400, `${k}: want a string`);
  return v;
}

function selectorsOf(v: unknown, what: string): SelectorView[] {
  if (!Array.isArray(v)) throw new HttpError(400, `${what}: want a list of {type, value}`);
  return v.map((s, i) => {
    if (!isObj(s) || typeof s['type'] !== 'string' || typeof s['value'] !== 'string' || s['type'] === '' || s['value'] === '') {
      throw new HttpError(400, `${what}[${i}]: want {type, value} with both set`);
    }
    return { type: s['type'], value: s['value'] };
  });
}

function optNum(o: Record<string, unknown>, k: string): number | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new HttpError(400, `${k}: want a whole number ≥ 0`);
  return v;
}

function strList(o: Record<string, unknown>, k: string): string[] | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new HttpError(400, `${k}: want a list of strings`);
  return v as string[];
}

/** An entry from the web app's JSON, or from `entry create -data` JSON (snake_case, as spire-server reads it). */
export function entryInput(v: unknown, at: string): EntryInput {
  if (!isObj(v)) throw new HttpError(400, `${at}: want an object`);
  const pick = (camel: string, snake: string): unknown => v[camel] ?? v[snake];
  const o: Record<string, unknown> = {
    id: pick('id', 'entry_id'),
    spiffeId: pick('spiffeId', 'spiffe_id'),
    parentId: pick('parentId', 'parent_id'),
    x509SvidTtl: pick('x509SvidTtl', 'x509_svid_ttl'),
    jwtSvidTtl: pick('jwtSvidTtl', 'jwt_svid_ttl'),
    dnsNames: pick('dnsNames', 'dns_names'),
    federatesWith: pick('federatesWith', 'federates_with'),
    expiresAt: pick('expiresAt', 'entry_expiry'),
    hint: v['hint'],
    admin: v['admin'],
    downstream: v['downstream'],
  };
  for (const k of ['admin', 'downstream']) if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new HttpError(400, `${at}.${k}: want true or false`);
  try {
    const e: EntryInput = {
      spiffeId: str(o, 'spiffeId', true),
      parentId: str(o, 'parentId', true),
      selectors: selectorsOf(v['selectors'], `${at}.selectors`),
      ...(o['id'] === undefined ? {} : { id: str(o, 'id') }),
      ...(o['hint'] === undefined ? {} : { hint: str(o, 'hint') }),
      ...(o['admin'] === undefined ? {} : { admin: o['admin'] as boolean }),
      ...(o['downstream'] === undefined ? {} : { downstream: o['downstream'] as boolean }),
    };
    const x509 = optNum(o, 'x509SvidTtl');
    const jwt = optNum(o, 'jwtSvidTtl');
    const exp = optNum(o, 'expiresAt');
    const dns = strList(o, 'dnsNames');
    const fed = strList(o, 'federatesWith');
    return {
      ...e,
      ...(x509 === undefined ? {} : { x509SvidTtl: x509 }),
      ...(jwt === undefined ? {} : { jwtSvidTtl: jwt }),
      ...(exp === undefined ? {} : { expiresAt: exp }),
      ...(dns === undefined ? {} : { dnsNames: dns }),
      ...(fed === undefined ? {} : { federatesWith: fed }),
    };
  } catch (e) {
    if (e instanceof HttpError) throw new HttpError(e.status, e.message.startsWith(at) ? e.message : `${at}.${e.message}`);
    throw e;
  }
}

function pageArgs(url: URL): { size: number; token: string } {
  const raw = url.searchParams.get('pageSize') ?? '50';
  const size = Number(raw);
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_PAGE) throw new HttpError(400, `pageSize: want 1 to ${MAX_PAGE}`);
  return { size, token: url.searchParams.get('pageToken') ?? '' };
}

/** Requests that change state must come from our own origin, carry the CSRF token, and be an admin's. */
function checkWrite(req: IncomingMessage, s: Session): void {
  const sent = req.headers['x-csrf-token'];
  if (typeof sent !== 'string' || sent !== s.csrf) throw new HttpError(403, 'missing or wrong X-CSRF-Token: reload the page');
  if (s.role !== 'admin') throw new HttpError(403, 'this login is read-only');
}

function checkOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const host = req.headers.host ?? '';
  let ok = false;
  try {
    ok = new URL(origin).host === host;
  } catch {
    ok = false;
  }
  if (!ok) throw new HttpError(403, `cross-origin request from ${origin} refused`);
}

/**
 * The unix workload attestor's selectors for a process on the console's host (the agent's host
 * when the console runs beside it, as in `ztwim up`). The agent package loads only when asked.
 */
async function pidSelectors(pid: number): Promise<SelectorView[]> {
  const { UnixWorkloadAttestor } = await import('@ztwim/agent');
  try {
    return await new UnixWorkloadAttestor().attest(pid);
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
    throw new HttpError(400, `pid ${pid}: ${(e as Error).message}${cause}`);
  }
}

export function createConsoleHandler(deps: ApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { admin, sessions, log } = deps;

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (method !== 'GET' && method !== 'HEAD') checkOrigin(req);

    if (path === '/api/login-options' && method === 'GET') return json(res, 200, { token: sessions.tokenLogin, oidc: deps.oidc !== undefined });
    if (path === '/api/login' && method === 'POST') {
      if (!sessions.tokenLogin) throw new HttpError(403, 'login tokens are turned off in this console: log in with OIDC');
      const body = await readJson(req);
      const token = isObj(body) && typeof body['token'] === 'string' ? body['token'] : '';
      const role = sessions.roleOf(token);
      if (role === undefined) throw new HttpError(401, 'wrong login token');
      const s = sessions.open(role);
      json(res, 200, { role: s.role, csrf: s.csrf }, { 'set-cookie': sessionCookie(s.id, deps.secure) });
      return;
    }

    const session = sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));
    if (session === undefined) throw new HttpError(401, 'log in first');
    const write = method !== 'GET' && method !== 'HEAD';
    if (write) checkWrite(req, session);

    if (path === '/api/session' && method === 'GET') return json(res, 200, { role: session.role, csrf: session.csrf });
    if (path === '/api/logout' && method === 'POST') {
      sessions.close(session.id);
      const redirect = await deps.oidc?.logoutUrl(session);
      return json(res, 200, redirect === undefined ? {} : { redirect }, { 'set-cookie': clearedSessionCookie(deps.secure) });
    }
    if (path === '/api/server' && method === 'GET') return json(res, 200, await admin.server());
    if (path === '/api/dashboard' && method === 'GET') return json(res, 200, await deps.dashboard());
    if (path === '/api/agents' && method === 'GET') {
      const p = pageArgs(url);
      return json(res, 200, await admin.agents(p.size, p.token));
    }
    const agentAction = /^\/api\/agents\/(ban|evict)$/.exec(path);
    if (agentAction !== null && method === 'POST') {
      const body = await readJson(req);
      const id = isObj(body) ? str(body, 'id', true) : '';
      if (agentAction[1] === 'ban') await admin.banAgent(id);
      else await admin.evictAgent(id);
      log.info({ spiffe_id: id }, agentAction[1] === 'ban' ? 'console: Agent banned' : 'console: Agent evicted');
      return json(res, 200, {});
    }
    if (path === '/api/join-tokens' && method === 'POST') {
      const body = await readJson(req);
      if (!isObj(body)) throw new HttpError(400, 'want {ttl, agentId}');
      const ttl = optNum(body, 'ttl') ?? 600;
      if (ttl < 1) throw new HttpError(400, 'ttl: want at least 1 second');
      return json(res, 200, await admin.createJoinToken(ttl, str(body, 'agentId')));
    }
    if (path === '/api/entries' && method === 'GET') {
      const p = pageArgs(url);
      const q = (k: string): string => url.searchParams.get(k) ?? '';
      return json(
        res,
        200,
        await admin.entries(p.size, p.token, { spiffeId: q('spiffeId'), parentId: q('parentId'), selector: q('selector'), federatesWith: q('federatesWith') }),
      );
    }
    if (path === '/api/entries' && method === 'POST') {
      const body = await readJson(req);
      const list = isObj(body) && Array.isArray(body['entries']) ? body['entries'] : undefined;
      if (list === undefined) throw new HttpError(400, 'want {"entries": [...]} (the `entry create -data` form)');
      const inputs = list.map((e, i) => entryInput(e, `entries[${i}]`));
      const results = await admin.createEntries(inputs);
      log.info({ count: results.filter((r) => r.ok).length }, 'console: Entries created');
      return json(res, 200, { results });
    }
    if (path === '/api/entries/export' && method === 'GET') {
      const entries = (await admin.allEntries()).map((e) => ({
        entry_id: e.id,
        spiffe_id: e.spiffeId,
        parent_id: e.parentId,
        selectors: e.selectors,
        x509_svid_ttl: e.x509SvidTtl,
        jwt_svid_ttl: e.jwtSvidTtl,
        federates_with: e.federatesWith,
        dns_names: e.dnsNames,
        admin: e.admin,
        downstream: e.downstream,
        entry_expiry: e.expiresAt,
        hint: e.hint,
      }));
      return json(res, 200, { entries }, { 'content-disposition': 'attachment; filename="entries.json"' });
    }
    const entryPath = /^\/api\/entries\/([^/]+)$/.exec(path);
    if (entryPath !== null && (method === 'PUT' || method === 'DELETE')) {
      const id = decodeURIComponent(entryPath[1] as string);
      if (method === 'DELETE') {
        const r = await admin.deleteEntry(id);
        if (r.ok) log.info({ entry_id: id }, 'console: Entry deleted');
        return json(res, r.ok ? 200 : 400, r);
      }
      const input = entryInput(await readJson(req), 'entry');
      const r = await admin.updateEntry({ ...input, id });
      return json(res, r.ok ? 200 : 400, r);
    }
    if (path === '/api/bundle' && method === 'GET') {
      const td = url.searchParams.get('trustDomain') ?? '';
      const b = td === '' ? await admin.bundle() : await admin.federatedBundle(td);
      const format = url.searchParams.get('format') ?? 'spiffe';
      if (format === 'pem') return send(res, 200, bundlePem(b), 'application/x-pem-file', { 'content-disposition': 'attachment; filename="bundle.pem"' });
      if (format === 'spiffe') return json(res, 200, bundleSpiffeJson(b));
      throw new HttpError(400, 'format: want pem or spiffe');
    }
    if (path === '/api/federated-bundles' && method === 'POST') {
      const body = await readJson(req);
      if (!isObj(body)) throw new HttpError(400, 'want {trustDomain, format, data}');
      const format = str(body, 'format', true);
      if (format !== 'pem' && format !== 'spiffe') throw new HttpError(400, 'format: want pem or spiffe');
      const td = str(body, 'trustDomain', true);
      await admin.setFederatedBundle(td, format, str(body, 'data', true));
      log.info({ trust_domain: td }, 'console: Federated bundle set');
      return json(res, 200, {});
    }
    if (path === '/api/federated-bundles/delete' && method === 'POST') {
      const body = await readJson(req);
      const td = isObj(body) ? str(body, 'trustDomain', true) : '';
      await admin.deleteFederatedBundle(td);
      log.info({ trust_domain: td }, 'console: Federated bundle deleted');
      return json(res, 200, {});
    }
    if (path === '/api/federation' && method === 'GET') {
      const [relationships, bundles] = await Promise.all([admin.relationships(), admin.federatedBundles()]);
      return json(res, 200, { relationships, bundles });
    }
    if (path === '/api/explain' && method === 'POST') {
      const body = await readJson(req);
      if (!isObj(body)) throw new HttpError(400, 'want {agentId, selectors}');
      const agent = await admin.agent(str(body, 'agentId', true));
      const workloadSelectors = selectorsOf(body['selectors'] ?? [], 'selectors');
      const pid = optNum(body, 'pid') ?? 0;
      if (pid > 0) workloadSelectors.push(...(await pidSelectors(pid)));
      if (workloadSelectors.length === 0) throw new HttpError(400, 'give workload selectors, or the PID of a process on the console host');
      const x = explain({
        agentId: agent.id,
        nodeSelectors: agent.selectors,
        workloadSelectors,
        entries: await admin.allEntries(),
        now: Math.floor(deps.clock.nowMs() / 1000),
        nearest: optNum(body, 'nearest') ?? 5,
      });
      return json(res, 200, { ...x, agentSelectors: agent.selectors, workloadSelectors });
    }
    if (path === '/api/events' && method === 'GET') return events(req, res);
    throw new HttpError(404, `no API ${method} ${path}`);
  }

  /** Server-sent events: `changed` whenever what the pages list moved (changes.ts). */
  function events(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': ztwim console events\n\n');
    const unsubscribe = deps.changes.subscribe((e) =>
      res.write(e.kind === 'changed' ? `event: changed\ndata: ${JSON.stringify(e.fingerprint)}\n\n` : `event: error\ndata: ${JSON.stringify(e.message)}\n\n`),
    );
    req.on('close', unsubscribe);
  }

  async function serveStatic(res: ServerResponse, url: URL): Promise<void> {
    let rel = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
    // Client-side routes (#/entries …) all load index.html; only files with an extension are assets.
    if (extname(rel) === '') rel = 'index.html';
    const file = normalize(join(deps.staticDir, rel));
    if (!file.startsWith(normalize(deps.staticDir))) throw new HttpError(404, 'not found');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      throw new HttpError(404, `not found: ${url.pathname}`);
    }
    send(res, 200, body, MIME[extname(file)] ?? 'application/octet-stream', { 'cache-control': 'no-cache' });
  }

  async function oidcRoute(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const r = await deps.oidc?.route(req, url, sessions);
    if (r === undefined) throw new HttpError(404, `not found: ${url.pathname}`);
    const headers = { ...(r.location === undefined ? {} : { location: r.location }), 'set-cookie': r.cookies };
    send(res, r.status, r.refusal === undefined ? '' : refusalPage(r), 'text/html; charset=utf-8', headers);
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const work = url.pathname.startsWith('/api/') ? api(req, res, url) : url.pathname.startsWith('/oidc/') ? oidcRoute(req, res, url) : serveStatic(res, url);
    work.catch((e: unknown) => {
      let status = 500;
      let message = 'internal error';
      if (e instanceof HttpError) {
        status = e.status;
        message = e.message;
      } else if (e instanceof AdminApiError) {
        status = 400;
        message = e.message;
      } else if (e instanceof ConnectError) {
        // The server's answer: a bad argument is the caller's, the rest the server's.
        status = e.code === 3 || e.code === 5 || e.code === 6 || e.code === 9 ? 400 : 502;
        message = `server API: ${e.rawMessage}`;
      } else {
        log.error({ error: e instanceof Error ? e.message : String(e), path: url.pathname }, 'console: Request failed');
      }
      if (!res.headersSent) json(res, status, { error: message });
      else res.end();
    });
  };
}

const escapeHtml = (t: string): string => t.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page a refused OIDC login lands on: the reason as text, and a way back. */
function refusalPage(r: OidcReply): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<title>Login refused · ztwim console</title><link rel="stylesheet" href="/app.css"></head>
<body><main class="login"><h1>Login refused</h1><p id="login-refused" class="error">${escapeHtml(r.refusal ?? '')}</p><p><a id="login-again" href="/">Back to the console</a></p></main></body></html>
`;
}
