// OIDC login to an external OpenID Provider (Tornjak's Keycloak option, for any provider): the
// authorization code flow with PKCE, state and nonce, done by panva's openid-client (certified
// relying party code: discovery, the token request, and the ID token's issuer, audience, expiry,
// nonce and signature from the provider's JWKS). What is ours: where the login's state lives (a
// short-lived cookie naming an in-memory record), which claim gives the role, and the pages.
//
//   GET /oidc/login     -> 302 to the provider's authorization endpoint
//   GET /oidc/callback  -> the code exchanged, the ID token checked, a console session opened, 303 to /
//
// A refused login (wrong state, nonce or issuer, an expired or badly signed token, no role) gets a
// page that says why, never a session.
import type { IncomingMessage } from 'node:http';
import * as oidc from 'openid-client';
import { asError, type Clock, type Logger } from '@ztwim/core';
import { cookieValue, newToken, sessionCookie, type Role, type Session, type Sessions } from './auth.ts';
import { isLoopbackHost, type ConsoleOidcConfig } from './console-config.ts';

export const OIDC_LOGIN_COOKIE = 'ztwim_console_oidc';
/** How long a started login may take at the provider. */
export const OIDC_LOGIN_TTL_MS = 10 * 60_000;
const MAX_PENDING = 1000;

export interface OidcLoginDeps {
  /** Where the provider sends the browser back (ends in /oidc/callback). */
  readonly redirectUri: string;
  readonly clientSecret?: string;
  /** The console serves https: the login cookie is then Secure. */
  readonly secure: boolean;
  readonly clock: Clock;
  readonly log: Logger;
}

/** What an /oidc/ route answers: a redirect or a page, with cookies to set. */
export interface OidcReply {
  readonly status: number;
  readonly location?: string;
  readonly cookies: readonly string[];
  /** The text of a page saying why a login was refused. */
  readonly refusal?: string;
}

interface Pending {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  readonly expiresAt: number;
}

class LoginRefused extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The strings at a dotted claim path (`groups`, `realm_access.roles`): a string is one value; undefined when absent. */
export function claimValues(claims: Readonly<Record<string, unknown>>, path: string): string[] | undefined {
  let v: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return undefined;
}

export class OidcLogin {
  readonly #cfg: ConsoleOidcConfig;
  readonly #deps: OidcLoginDeps;
  readonly #auth: oidc.ClientAuth;
  readonly #insecure: boolean;
  readonly #pending = new Map<string, Pending>();
  #metadata: Promise<oidc.ServerMetadata> | undefined;
  #jwks: oidc.ExportedJWKSCache | undefined;

  constructor(cfg: ConsoleOidcConfig, deps: OidcLoginDeps) {
    this.#cfg = cfg;
    this.#deps = deps;
    this.#auth = deps.clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(deps.clientSecret);
    // Plain http only to a provider on this host (console-config.ts refuses any other).
    this.#insecure = new URL(cfg.issuer).protocol === 'http:' && isLoopbackHost(new URL(cfg.issuer).hostname);
  }

  /** Fetches the provider's discovery document now (at start), so a wrong issuer shows in the log early. */
  warmUp(): void {
    this.#discover().catch(() => undefined);
  }

  /** The provider's metadata: fetched once; a failure is forgotten so the next login tries again. */
  #discover(): Promise<oidc.ServerMetadata> {
    if (this.#metadata === undefined) {
      const execute = this.#insecure ? [oidc.allowInsecureRequests] : [];
      this.#metadata = oidc.discovery(new URL(this.#cfg.issuer), this.#cfg.clientId, undefined, this.#auth, { execute, timeout: 15 }).then(
        (c) => {
          this.#deps.log.info({ issuer: this.#cfg.issuer }, 'console: OIDC provider discovered');
          return c.serverMetadata();
        },
        (e: unknown) => {
          this.#metadata = undefined;
          const err = asError(e);
          this.#deps.log.warn({ issuer: this.#cfg.issuer, error: err.message }, 'console: OIDC provider discovery failed');
          throw new LoginRefused(502, `the identity provider ${this.#cfg.issuer} could not be reached or is not an OpenID Provider: ${detail(err)}`);
        },
      );
    }
    return this.#metadata;
  }

  /**
   * A client configuration for one exchange. Built per call so that the ID token's times are
   * judged by the console's clock (openid-client reads Date.now(); its clock skew carries the
   * difference, 0 with the system clock); the provider's JWKS is kept between calls.
   */
  async #client(): Promise<oidc.Configuration> {
    const metadata = await this.#discover();
    const skew = Math.floor(this.#deps.clock.nowMs() / 1000) - Math.floor(Date.now() / 1000);
    const c = new oidc.Configuration(metadata, this.#cfg.clientId, { [oidc.clockSkew]: skew }, this.#auth);
    if (this.#insecure) oidc.allowInsecureRequests(c);
    // The ID token's signature is checked against the provider's JWKS (jwks_uri), beside TLS.
    oidc.enableNonRepudiationChecks(c);
    if (this.#jwks !== undefined) oidc.setJwksCache(c, this.#jwks);
    return c;
  }

  /** Answers GET /oidc/login and GET /oidc/callback; undefined for other paths. */
  async route(req: IncomingMessage, url: URL, sessions: Sessions): Promise<OidcReply | undefined> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
    try {
      if (url.pathname === '/oidc/login') return await this.#begin();
      if (url.pathname === '/oidc/callback') return await this.#finish(req, url, sessions);
    } catch (e) {
      const refused = e instanceof LoginRefused ? e : new LoginRefused(500, `the login failed: ${asError(e).message}`);
      this.#deps.log.warn({ reason: refused.message }, 'console: OIDC login refused');
      return { status: refused.status, cookies: [this.#loginCookie('', 0)], refusal: refused.message };
    }
    return undefined;
  }

  async #begin(): Promise<OidcReply> {
    const c = await this.#client();
    const verifier = oidc.randomPKCECodeVerifier();
    const p: Pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier, expiresAt: this.#deps.clock.nowMs() + OIDC_LOGIN_TTL_MS };
    this.#prune();
    const id = newToken(24);
    this.#pending.set(id, p);
    const location = oidc.buildAuthorizationUrl(c, {
      redirect_uri: this.#deps.redirectUri,
      scope: this.#cfg.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: p.state,
      nonce: p.nonce,
    });
    return { status: 302, location: location.href, cookies: [this.#loginCookie(id, OIDC_LOGIN_TTL_MS / 1000)] };
  }

  async #finish(req: IncomingMessage, url: URL, sessions: Sessions): Promise<OidcReply> {
    const id = cookieValue(req.headers.cookie, OIDC_LOGIN_COOKIE) ?? '';
    const p = this.#pending.get(id);
    this.#pending.delete(id);
    if (p === undefined || this.#deps.clock.nowMs() > p.expiresAt) {
      throw new LoginRefused(400, 'this login was not started from this console in this browser, or took over 10 minutes: start it again');
    }
    // The URL the provider redirected to, as registered (the console may sit behind a proxy).
    const current = new URL(this.#deps.redirectUri);
    current.search = url.search;
    const c = await this.#client();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(c, current, {
        pkceCodeVerifier: p.verifier,
        expectedState: p.state,
        expectedNonce: p.nonce,
        idTokenExpected: true,
      });
    } catch (e) {
      throw new LoginRefused(401, `the identity provider's answer was refused: ${detail(asError(e))}`);
    } finally {
      this.#jwks = oidc.getJwksCache(c) ?? this.#jwks;
    }
    const claims = tokens.claims();
    const idToken = tokens.id_token;
    if (claims === undefined || idToken === undefined) throw new LoginRefused(401, 'the identity provider sent no ID token');
    let values = claimValues(claims, this.#cfg.roleClaim);
    // Providers that keep groups out of the ID token (Okta, Auth0) give them from userinfo.
    if (values === undefined && tokens.access_token !== '' && c.serverMetadata().userinfo_endpoint !== undefined) {
      try {
        values = claimValues(await oidc.fetchUserInfo(c, tokens.access_token, claims.sub), this.#cfg.roleClaim);
      } catch (e) {
        this.#deps.log.warn({ error: asError(e).message }, 'console: OIDC userinfo failed');
      }
    }
    const name = [claims['preferred_username'], claims['email'], claims.sub].find((v): v is string => typeof v === 'string' && v !== '') ?? claims.sub;
    const role: Role | undefined = values?.some((v) => this.#cfg.adminValues.includes(v))
      ? 'admin'
      : values?.some((v) => this.#cfg.viewerValues.includes(v))
        ? 'viewer'
        : undefined;
    if (role === undefined) {
      const held = values === undefined ? 'is not in the ID token' : values.length === 0 ? 'is empty' : `holds ${values.map((v) => `"${v}"`).join(', ')}`;
      const want = [
        ...(this.#cfg.adminValues.length > 0 ? [`${this.#cfg.adminValues.map((v) => `"${v}"`).join(' or ')} (admin)`] : []),
        ...(this.#cfg.viewerValues.length > 0 ? [`${this.#cfg.viewerValues.map((v) => `"${v}"`).join(' or ')} (read-only)`] : []),
      ];
      throw new LoginRefused(403, `${name} has no role in this console: the "${this.#cfg.roleClaim}" claim ${held}; the console wants ${want.join(' or ')}`);
    }
    const s: Session = sessions.open(role, { name, idToken });
    this.#deps.log.info({ identity: name, issuer: claims.iss, role }, 'console: OIDC login');
    return { status: 303, location: '/', cookies: [sessionCookie(s.id, this.#deps.secure), this.#loginCookie('', 0)] };
  }

  /** Where the browser goes to log out at the provider too, if it has an end_session_endpoint. */
  async logoutUrl(session: Session): Promise<string | undefined> {
    if (session.oidc === undefined) return undefined;
    let c: oidc.Configuration;
    try {
      c = await this.#client();
    } catch {
      return undefined;
    }
    if (c.serverMetadata().end_session_endpoint === undefined) return undefined;
    return oidc.buildEndSessionUrl(c, {
      id_token_hint: session.oidc.idToken,
      client_id: this.#cfg.clientId,
      ...(this.#cfg.postLogoutRedirectUri === undefined ? {} : { post_logout_redirect_uri: this.#cfg.postLogoutRedirectUri }),
    }).href;
  }

  #prune(): void {
    const now = this.#deps.clock.nowMs();
    for (const [id, p] of this.#pending) if (now > p.expiresAt) this.#pending.delete(id);
    // Logins started and never finished: the oldest go first (a Map iterates in insertion order).
    for (const id of this.#pending.keys()) {
      if (this.#pending.size < MAX_PENDING) break;
      this.#pending.delete(id);
    }
  }

  /** The login's cookie: SameSite=Lax, as the provider's redirect back is a cross-site navigation. */
  #loginCookie(id: string, maxAgeS: number): string {
    return `${OIDC_LOGIN_COOKIE}=${id}; Path=/oidc/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeS}${this.#deps.secure ? '; Secure' : ''}`;
  }
}

/** An openid-client error with the provider's own words (error, error_description) when it sent some. */
function detail(e: Error): string {
  const o = e as Error & { error?: unknown; error_description?: unknown };
  const extra = [o.error, o.error_description].filter((x): x is string => typeof x === 'string' && x !== '' && !e.message.includes(x));
  const cause = e.cause instanceof Error && !e.message.includes(e.cause.message) ? `: ${e.cause.message}` : '';
  return `${e.message}${extra.length > 0 ? ` (${extra.join(': ')})` : ''}${cause}`;
}
