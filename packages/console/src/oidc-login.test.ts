// The console's OIDC login against a small OpenID Provider served here on 127.0.0.1 (discovery,
// JWKS, token endpoint checking the PKCE verifier), whose ID tokens each test shapes: a login
// with the right claims gets a session of the role its groups give; a wrong state, nonce, issuer
// or audience, an expired or foreign-signed token, a missing or unmatched role claim are refused
// with a page that says why, and open no session.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { cookieValue, SESSION_COOKIE, Sessions } from './auth.ts';
import { CONSOLE_DEFAULTS, type ConsoleOidcConfig } from './console-config.ts';
import { claimValues, OidcLogin, OIDC_LOGIN_COOKIE, type OidcReply } from './oidc-login.ts';

const CLIENT_ID = 'ztwim-console-test';
const REDIRECT = 'http://127.0.0.1:8090/oidc/callback';

interface Grant {
  challenge: string;
  claims: JWTPayload;
  key: CryptoKey;
}

/** An OpenID Provider reduced to what the console's relying party calls. */
class TestProvider {
  server!: Server;
  issuer = '';
  key!: CryptoKey;
  readonly kid = 'test-key-1';
  readonly grants = new Map<string, Grant>();
  tokenRequests = 0;

  async start(): Promise<void> {
    const pair = await generateKeyPair('ES256');
    this.key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: this.kid, alg: 'ES256', use: 'sig' };
    this.server = createServer(
      (req, res) =>
        void this.#serve(req, jwk).then(([status, body]) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))),
    );
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async #serve(req: IncomingMessage, jwk: object): Promise<[number, unknown]> {
    const path = new URL(req.url ?? '/', this.issuer).pathname;
    if (path === '/.well-known/openid-configuration') {
      return [
        200,
        {
          issuer: this.issuer,
          authorization_endpoint: `${this.issuer}/auth`,
          token_endpoint: `${this.issuer}/token`,
          jwks_uri: `${this.issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['ES256'],
          code_challenge_methods_supported: ['S256'],
        },
      ];
    }
    if (path === '/jwks') return [200, { keys: [jwk] }];
    if (path === '/token' && req.method === 'POST') {
      this.tokenRequests++;
      let body = '';
      for await (const c of req) body += (c as Buffer).toString();
      const form = new URLSearchParams(body);
      const g = this.grants.get(form.get('code') ?? '');
      if (g === undefined) return [400, { error: 'invalid_grant', error_description: 'unknown code' }];
      const verifier = form.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== g.challenge)
        return [400, { error: 'invalid_grant', error_description: 'PKCE verification failed' }];
      if (form.get('redirect_uri') !== REDIRECT) return [400, { error: 'invalid_grant', error_description: 'redirect_uri mismatch' }];
      const idToken = await new SignJWT(g.claims).setProtectedHeader({ alg: 'ES256', kid: this.kid }).sign(g.key);
      return [200, { access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 300, id_token: idToken }];
    }
    return [404, { error: 'not_found' }];
  }
}

describe('console OIDC login', () => {
  const op = new TestProvider();
  let clock: FakeClock;
  before(() => op.start());
  after(() => new Promise<void>((r) => op.server.close(() => r())));

  const setup = (over: Partial<ConsoleOidcConfig> = {}): { login: OidcLogin; sessions: Sessions } => {
    clock = new FakeClock();
    const cfg: ConsoleOidcConfig = {
      issuer: op.issuer,
      clientId: CLIENT_ID,
      scopes: ['openid', 'groups'],
      roleClaim: CONSOLE_DEFAULTS.roleClaim,
      adminValues: [...CONSOLE_DEFAULTS.adminValues],
      viewerValues: [...CONSOLE_DEFAULTS.viewerValues],
      ...over,
    };
    return { login: new OidcLogin(cfg, { redirectUri: REDIRECT, secure: false, clock, log: silentLogger() }), sessions: new Sessions(undefined, clock) };
  };
  const get = (cookie?: string): IncomingMessage => ({ method: 'GET', headers: cookie === undefined ? {} : { cookie } }) as IncomingMessage;

  /** Starts a login, lets the provider "authenticate" the user with these ID token claims, and returns the callback's answer. */
  async function loginWith(
    login: OidcLogin,
    sessions: Sessions,
    shape: (base: JWTPayload) => JWTPayload,
    opts: { state?: string; key?: CryptoKey; cookie?: string; beforeCallback?: () => void } = {},
  ): Promise<OidcReply> {
    const begin = await login.route(get(), new URL('http://127.0.0.1:8090/oidc/login'), sessions);
    assert.ok(begin !== undefined && begin.status === 302 && begin.location !== undefined, JSON.stringify(begin));
    const auth = new URL(begin.location);
    assert.equal(auth.origin + auth.pathname, `${op.issuer}/auth`);
    assert.equal(auth.searchParams.get('client_id'), CLIENT_ID);
    assert.equal(auth.searchParams.get('redirect_uri'), REDIRECT);
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    const loginCookie = begin.cookies[0] ?? '';
    assert.match(loginCookie, /HttpOnly; SameSite=Lax/);
    const code = randomBytes(12).toString('hex');
    const now = Math.floor(clock.nowMs() / 1000);
    const base: JWTPayload = {
      iss: op.issuer,
      aud: CLIENT_ID,
      sub: 'user-1',
      preferred_username: 'alice',
      iat: now,
      exp: now + 300,
      nonce: auth.searchParams.get('nonce') ?? '',
      groups: ['ztwim-admins'],
    };
    op.grants.set(code, { challenge: auth.searchParams.get('code_challenge') ?? '', claims: shape(base), key: opts.key ?? op.key });
    opts.beforeCallback?.();
    const cb = new URL('http://127.0.0.1:8090/oidc/callback');
    cb.searchParams.set('code', code);
    cb.searchParams.set('state', opts.state ?? auth.searchParams.get('state') ?? '');
    const cookie = opts.cookie ?? loginCookie.split(';')[0];
    const reply = await login.route(get(cookie), cb, sessions);
    assert.ok(reply !== undefined);
    return reply;
  }

  const sessionOf = (r: OidcReply, sessions: Sessions): ReturnType<Sessions['get']> => {
    const set = r.cookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    return sessions.get(cookieValue(set?.split(';')[0], SESSION_COOKIE));
  };

  it('logs an admin in: a session of the admin role, its cookie HttpOnly and SameSite=Strict, then to the console', async () => {
    const { login, sessions } = setup();
    const r = await loginWith(login, sessions, (c) => c);
    assert.equal(r.refusal, undefined, r.refusal);
    assert.equal(r.status, 303);
    assert.equal(r.location, '/');
    assert.ok(r.cookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`) && c.includes('HttpOnly') && c.includes('SameSite=Strict')));
    assert.ok(
      r.cookies.some((c) => c.startsWith(`${OIDC_LOGIN_COOKIE}=;`) && c.includes('Max-Age=0')),
      'the login cookie is cleared',
    );
    const s = sessionOf(r, sessions);
    assert.equal(s?.role, 'admin');
    assert.equal(s?.oidc?.name, 'alice');
  });

  it('gives the read-only role to a viewer group, and reads a dotted claim path (Keycloak realm roles)', async () => {
    const { login, sessions } = setup();
    const viewer = await loginWith(login, sessions, (c) => ({ ...c, groups: ['staff', 'ztwim-viewers'] }));
    assert.equal(sessionOf(viewer, sessions)?.role, 'viewer');
    const kc = setup({ roleClaim: 'realm_access.roles' });
    const r = await loginWith(kc.login, kc.sessions, (c) => ({ ...c, groups: undefined, realm_access: { roles: ['ztwim-admins'] } }));
    assert.equal(sessionOf(r, kc.sessions)?.role, 'admin');
  });

  const refused = async (r: OidcReply, status: number, why: RegExp): Promise<void> => {
    assert.equal(r.status, status, r.refusal);
    assert.match(r.refusal ?? '', why);
    assert.ok(!r.cookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)), 'no session cookie');
  };

  it('refuses a callback whose state is not the one the login sent', async () => {
    const { login, sessions } = setup();
    const before = op.tokenRequests;
    await refused(await loginWith(login, sessions, (c) => c, { state: 'forged-state' }), 401, /state/);
    assert.equal(op.tokenRequests, before, 'the code is never exchanged');
  });

  it('refuses a callback without the login cookie of this browser', async () => {
    const { login, sessions } = setup();
    await refused(
      await loginWith(login, sessions, (c) => c, { cookie: `${OIDC_LOGIN_COOKIE}=someone-elses` }),
      400,
      /not started from this console in this browser/,
    );
  });

  it('refuses an ID token with the wrong nonce', async () => {
    const { login, sessions } = setup();
    await refused(await loginWith(login, sessions, (c) => ({ ...c, nonce: 'replayed-nonce' })), 401, /nonce/);
  });

  it('refuses an ID token from another issuer, or for another audience', async () => {
    const { login, sessions } = setup();
    await refused(await loginWith(login, sessions, (c) => ({ ...c, iss: 'https://evil.example' })), 401, /"iss"/);
    await refused(await loginWith(login, sessions, (c) => ({ ...c, aud: 'another-client' })), 401, /"aud"/);
  });

  it('refuses an expired ID token (the console clock 1 min past its exp, beyond the 30 s tolerance)', async () => {
    const { login, sessions } = setup();
    await refused(await loginWith(login, sessions, (c) => c, { beforeCallback: () => clock.advance(6 * 60_000) }), 401, /"exp"/);
  });

  it('refuses an ID token not signed by a key of the provider JWKS', async () => {
    const { login, sessions } = setup();
    const other = (await generateKeyPair('ES256')).privateKey;
    await refused(await loginWith(login, sessions, (c) => c, { key: other }), 401, /signature/i);
  });

  it('refuses a login without the role claim, or with none of the configured values, saying which claim and values', async () => {
    const { login, sessions } = setup();
    await refused(
      await loginWith(login, sessions, (c) => ({ ...c, groups: undefined })),
      403,
      /alice has no role in this console: the "groups" claim is not in the ID token/,
    );
    const r = await loginWith(login, sessions, (c) => ({ ...c, groups: ['staff'] }));
    await refused(r, 403, /the "groups" claim holds "staff"; the console wants "ztwim-admins" \(admin\) or "ztwim-viewers" \(read-only\)/);
  });

  it('uses a login state once: the same callback again is refused', async () => {
    const { login, sessions } = setup();
    const begin = await login.route(get(), new URL('http://127.0.0.1:8090/oidc/login'), sessions);
    const cookie = (begin?.cookies[0] ?? '').split(';')[0];
    const state = new URL(begin?.location ?? '').searchParams.get('state') ?? '';
    const cb = new URL(`http://127.0.0.1:8090/oidc/callback?code=x&state=${state}`);
    await login.route(get(cookie), cb, sessions);
    await refused((await login.route(get(cookie), cb, sessions)) as OidcReply, 400, /not started from this console/);
  });

  it('names the provider when discovery fails', async () => {
    const { login, sessions } = setup({ issuer: 'http://127.0.0.1:1' });
    const r = await login.route(get(), new URL('http://127.0.0.1:8090/oidc/login'), sessions);
    assert.equal(r?.status, 502);
    assert.match(r?.refusal ?? '', /the identity provider http:\/\/127\.0\.0\.1:1 could not be reached/);
  });

  it('reads claim values at a dotted path, a string as one value', () => {
    assert.deepEqual(claimValues({ groups: ['a', 1, 'b'] }, 'groups'), ['a', 'b']);
    assert.deepEqual(claimValues({ role: 'admin' }, 'role'), ['admin']);
    assert.deepEqual(claimValues({ a: { b: ['x'] } }, 'a.b'), ['x']);
    assert.equal(claimValues({ a: ['x'] }, 'a.b'), undefined);
    assert.equal(claimValues({}, 'groups'), undefined);
  });
});
