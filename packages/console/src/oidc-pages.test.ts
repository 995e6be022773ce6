// The console's /oidc/ routes over HTTP: a refusal is a page under the console's CSP whose reason
// (which may carry a provider's words or a claim's values) is escaped text; a redirect carries its
// cookies; without OIDC configured the routes do not exist and token login is the only one offered.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import type { AdminApi } from './admin.ts';
import { Sessions } from './auth.ts';
import type { ChangeWatcher } from './changes.ts';
import { createConsoleHandler, CONTENT_SECURITY_POLICY } from './http-api.ts';
import type { OidcReply } from './oidc-login.ts';

describe('console OIDC routes over HTTP', () => {
  let staticDir: string;
  const servers: Server[] = [];
  before(() => {
    staticDir = mkdtempSync(join(tmpdir(), 'ztwim-console-web-'));
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>t</title>');
  });
  after(() => {
    for (const s of servers) s.close();
    rmSync(staticDir, { recursive: true, force: true });
  });

  async function serve(reply: OidcReply | undefined, tokens = true): Promise<string> {
    const clock = new FakeClock();
    const handler = createConsoleHandler({
      admin: {} as AdminApi,
      sessions: new Sessions(tokens ? { admin: 'admin-token-0123456789', viewer: '' } : undefined, clock),
      staticDir,
      secure: false,
      clock,
      log: silentLogger(),
      // the login routes never reach live updates or the dashboard
      changes: {} as ChangeWatcher,
      dashboard: () => Promise.resolve({}),
      ...(reply === undefined ? {} : { oidc: { route: () => Promise.resolve(reply), logoutUrl: () => Promise.resolve(undefined) } }),
    });
    const s = createServer(handler);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  it('shows a refusal as escaped text under the CSP', async () => {
    const base = await serve({ status: 403, cookies: ['ztwim_console_oidc=; Max-Age=0'], refusal: 'the "groups" claim holds "<script>alert(1)</script>"' });
    const r = await fetch(`${base}/oidc/callback?code=x&state=y`);
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    assert.match(r.headers.get('set-cookie') ?? '', /ztwim_console_oidc=; Max-Age=0/);
    const body = await r.text();
    assert.ok(!body.includes('<script>'), body);
    assert.match(body, /id="login-refused"[^>]*>the &#34;groups&#34; claim holds &#34;&#60;script&#62;alert\(1\)&#60;\/script&#62;&#34;</);
  });

  it('redirects with the reply location and cookies', async () => {
    const base = await serve({ status: 302, location: 'https://idp.example/auth?x=1', cookies: ['a=1', 'b=2'] });
    const r = await fetch(`${base}/oidc/login`, { redirect: 'manual' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), 'https://idp.example/auth?x=1');
    assert.deepEqual(r.headers.getSetCookie(), ['a=1', 'b=2']);
  });

  it('offers only what is configured: no OIDC routes without OIDC, no token login when turned off', async () => {
    const plain = await serve(undefined);
    assert.equal((await fetch(`${plain}/oidc/login`, { redirect: 'manual' })).status, 404);
    assert.deepEqual(await (await fetch(`${plain}/api/login-options`)).json(), { token: true, oidc: false });
    const oidcOnly = await serve({ status: 302, location: '/', cookies: [] }, false);
    assert.deepEqual(await (await fetch(`${oidcOnly}/api/login-options`)).json(), { token: false, oidc: true });
    const login = await fetch(`${oidcOnly}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'admin-token-0123456789' }),
    });
    assert.equal(login.status, 403);
    assert.match(((await login.json()) as { error: string }).error, /login tokens are turned off in this console: log in with OIDC/);
  });
});
