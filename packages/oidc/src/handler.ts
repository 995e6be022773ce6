import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '@ztwim/core';
import { silentLogger } from '@ztwim/core';
import { signingAlgs, toPublicKeySet, type PublishedJwk } from './jwk.ts';
import type { JwksSource, KeySetSnapshot } from './jwks-source.ts';
import type { OidcMetrics } from './metrics.ts';

export interface OidcHandlerOptions {
  readonly source: JwksSource;
  readonly domains: readonly string[];
  /** Configured issuer, served verbatim. */
  readonly issuer?: string | undefined;
  /** Configured jwks_uri, served verbatim. */
  readonly jwksUri?: string | undefined;
  /** Default `/`. */
  readonly serverPathPrefix?: string;
  readonly setKeyUse?: boolean;
  readonly allowInsecureScheme?: boolean;
  readonly maxKeys?: number;
  readonly logger?: Logger;
  readonly metrics?: OidcMetrics;
}

/** The discovery document, members in SPIRE's order. */
export interface DiscoveryDocument {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly authorization_endpoint: string;
  readonly response_types_supported: readonly string[];
  readonly subject_types_supported: readonly string[];
  readonly id_token_signing_alg_values_supported: readonly string[];
}

interface KeysState {
  readonly snapshot: KeySetSnapshot;
  /** Precomputed raw header lists (flat [name, value, ...]) for 200 and 304. */
  readonly okHeaders: readonly string[];
  readonly notModifiedHeaders: readonly string[];
  readonly keys: readonly PublishedJwk[];
  readonly body: Buffer;
  readonly etag: string;
  readonly lastModified: string;
  readonly lastModifiedSec: number;
  readonly algs: readonly string[];
}

export type RouteName = 'discovery' | 'keys' | 'other';

const KEYS_HEADERS = [
  'Cache-Control',
  'no-cache, no-store, must-revalidate',
  'Pragma',
  'no-cache',
  'Expires',
  '0',
  'Access-Control-Allow-Origin',
  '*',
] as const;

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

/** Go's http.Error: plain text, nosniff, message plus newline. */
export function sendError(res: ServerResponse, status: number, message: string): void {
  const body = `${message}\n`;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const first = s.split(',')[0]?.trim();
  return first === '' ? undefined : first;
}

/** Host without port; handles `[v6]:port`. */
export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(1, end);
  }
  const i = host.lastIndexOf(':');
  return i < 0 ? host : host.slice(0, i);
}

function forwardedProto(req: IncomingMessage): string | undefined {
  const xfp = firstHeader(req.headers['x-forwarded-proto']) ?? firstHeader(req.headers['x-forwarded-scheme']);
  if (xfp !== undefined) return xfp.toLowerCase();
  const fwd = firstHeader(req.headers.forwarded);
  if (fwd !== undefined) {
    const m = /(?:^|;)\s*proto=("?)([a-zA-Z][a-zA-Z0-9+.-]*)\1/i.exec(fwd);
    if (m?.[2] !== undefined) return m[2].toLowerCase();
  }
  return undefined;
}

function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}

/**
 * The request handler for the discovery document and the key set. It is transport-agnostic
 * (plain HTTP, TLS, or a Unix socket) and never redirects.
 */
export class OidcHandler {
  private readonly source: JwksSource;
  private readonly domains: ReadonlySet<string>;
  private readonly issuer: string | undefined;
  private readonly jwksUriFromIssuer: string | undefined;
  private readonly jwksUri: string | undefined;
  private readonly prefix: string;
  private readonly discoveryPath: string;
  private readonly keysPath: string;
  private readonly setKeyUse: boolean;
  private readonly allowInsecureScheme: boolean;
  private readonly maxKeys: number | undefined;
  private readonly logger: Logger;
  private readonly metrics: OidcMetrics | undefined;
  private state: KeysState | undefined;
  private stateFor: KeySetSnapshot | undefined;
  private readonly discoveryCache = new Map<string, { body: Buffer; etag: string }>();
  private readonly unsubscribe: () => void;

  constructor(options: OidcHandlerOptions) {
    this.source = options.source;
    this.domains = new Set(options.domains);
    this.issuer = options.issuer;
    this.jwksUri = options.jwksUri;
    if (options.issuer !== undefined) {
      const u = new URL(options.issuer);
      this.jwksUriFromIssuer = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}/keys`;
    }
    const p = (options.serverPathPrefix ?? '/').replace(/\/+$/, '');
    this.prefix = p;
    this.discoveryPath = `${p}/.well-known/openid-configuration`;
    this.keysPath = `${p}/keys`;
    this.setKeyUse = options.setKeyUse ?? false;
    this.allowInsecureScheme = options.allowInsecureScheme ?? false;
    this.maxKeys = options.maxKeys;
    this.logger = options.logger ?? silentLogger();
    this.metrics = options.metrics;
    this.unsubscribe = this.source.onChange(() => {
      this.refresh();
    });
    this.refresh();
  }

  /** Stops listening to the source. */
  close(): void {
    this.unsubscribe();
  }

  /** True once at least one key is published. */
  ready(): boolean {
    this.refresh();
    return this.state !== undefined && this.state.keys.length > 0;
  }

  /** The currently published keys (after sanitising), or undefined before the first key set. */
  publishedKeys(): readonly PublishedJwk[] | undefined {
    this.refresh();
    return this.state?.keys;
  }

  /** Which route a path belongs to (for metrics labels). */
  routeOf(path: string): RouteName {
    if (path === this.discoveryPath) return 'discovery';
    if (path === this.keysPath) return 'keys';
    return 'other';
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const route = this.routeOf(path);
    if (route === 'other') {
      sendError(res, 404, '404 page not found');
      return;
    }
    if (req.method !== 'GET') {
      sendError(res, 405, 'method not allowed');
      return;
    }
    if (route === 'discovery') this.serveDiscovery(req, res);
    else this.serveKeys(req, res);
  }

  /** Rebuilds the cached /keys document when the source has a new snapshot. */
  private refresh(): void {
    const snap = this.source.current();
    if (snap === this.stateFor) return;
    this.stateFor = snap;
    if (snap === undefined) {
      this.state = undefined;
      return;
    }
    const set = toPublicKeySet(snap.keys, {
      setKeyUse: this.setKeyUse,
      ...(this.maxKeys === undefined ? {} : { maxKeys: this.maxKeys }),
    });
    for (const d of set.dropped) {
      this.logger.error({ kid: d.kid, index: d.index, reason: d.reason }, 'Key not published');
    }
    for (const k of set.keys) {
      if (k.alg === undefined) this.logger.error({ kid: k.kid, kty: k.kty }, 'Cannot derive alg for key');
    }
    const body = Buffer.from(JSON.stringify({ keys: set.keys }, null, 2));
    const lastModifiedSec = Math.floor(snap.updatedAt.getTime() / 1000);
    const etag = etagOf(body);
    const lastModified = new Date(lastModifiedSec * 1000).toUTCString();
    const common = [...KEYS_HEADERS, 'ETag', etag, 'Last-Modified', lastModified];
    this.state = {
      snapshot: snap,
      okHeaders: [...common, 'Content-Type', 'application/json', 'Content-Length', String(body.length)],
      notModifiedHeaders: common,
      keys: set.keys,
      body,
      etag,
      lastModified,
      lastModifiedSec,
      algs: signingAlgs(set.keys),
    };
    this.discoveryCache.clear();
    this.metrics?.keySetUpdated(set.keys.length, snap.updatedAt);
    this.logger.info({ keys: set.keys.length, dropped: set.dropped.length }, 'Published key set updated');
  }

  private serveKeys(req: IncomingMessage, res: ServerResponse): void {
    this.refresh();
    const st = this.state;
    if (st === undefined) {
      sendError(res, 500, 'document not available');
      return;
    }
    if (st.keys.length === 0) {
      sendError(res, 501, 'jwt not supported/enabled in this service');
      return;
    }
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    let notModified = false;
    if (inm !== undefined) {
      notModified = etagMatches(inm, st.etag);
    } else if (ims !== undefined) {
      const t = Date.parse(ims);
      notModified = !Number.isNaN(t) && st.lastModifiedSec <= Math.floor(t / 1000);
    }
    if (notModified) {
      res.writeHead(304, st.notModifiedHeaders as string[]);
      res.end();
      return;
    }
    res.writeHead(200, st.okHeaders as string[]);
    res.end(st.body);
  }

  private serveDiscovery(req: IncomingMessage, res: ServerResponse): void {
    const rawHost = firstHeader(req.headers['x-forwarded-host']) ?? req.headers.host ?? '';
    const host = hostWithoutPort(rawHost);
    if (host !== host.toLowerCase() || /[^\x21-\x7e]/.test(host)) {
      sendError(res, 400, `domain "${host}" must already be punycode encoded`);
      return;
    }
    if (!this.domains.has(host)) {
      sendError(res, 400, `domain "${host}" is not allowed`);
      return;
    }
    this.refresh();
    const tls = (req.socket as Partial<TLSSocket>).encrypted === true;
    const scheme = this.allowInsecureScheme && !tls && forwardedProto(req) !== 'https' ? 'http' : 'https';
    const algs = this.state?.algs ?? signingAlgs([]);
    const cacheKey = `${scheme}://${rawHost}`;
    let doc = this.discoveryCache.get(cacheKey);
    if (doc === undefined) {
      const base = `${scheme}://${rawHost}`;
      const body: DiscoveryDocument = {
        issuer: this.issuer ?? `${base}${this.prefix}`,
        jwks_uri: this.jwksUri ?? this.jwksUriFromIssuer ?? `${base}${this.keysPath}`,
        authorization_endpoint: '',
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: algs,
      };
      const bytes = Buffer.from(JSON.stringify(body, null, 2));
      doc = { body: bytes, etag: etagOf(bytes) };
      if (this.discoveryCache.size >= 64) this.discoveryCache.clear();
      this.discoveryCache.set(cacheKey, doc);
    }
    const headers = { 'Access-Control-Allow-Origin': '*', ETag: doc.etag };
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && etagMatches(inm, doc.etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': 'application/json', 'Content-Length': doc.body.length });
    res.end(doc.body);
  }
}
