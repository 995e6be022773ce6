// The web console's OIDC login in a real browser against a real OpenID Provider: `ztwim server
// run` with a `console { oidc { } }` block starts the console beside the server; panva's certified
// oidc-provider runs in its own process (lib/oidc-provider-peer.ts) on another site (localhost)
// than the console (127.0.0.1). Chromium clicks "Log in with OIDC", signs in at the provider's
// pages and lands on the console: as admin it creates an entry the CLI then lists; as viewer its
// write is refused; a login whose groups hold no console role gets the page saying so; logout
// ends the session at the console and at the provider. The login token of the same console keeps
// working beside OIDC.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from './lib/net.ts';
import { REPO_ROOT } from './lib/peers.ts';
import { serverConf } from './lib/server-conf.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { until } from './lib/wait.ts';
import { runZtwim, startZtwim, stopProc, type Proc } from './lib/ztwim-cli.ts';

const CHROMIUM = process.env['ZTWIM_CHROMIUM'] ?? '/usr/bin/chromium';
const TD = 'example.org';
const CLIENT_ID = 'ztwim-console';
const PEER = join(import.meta.dirname, 'lib', 'oidc-provider-peer.ts');

describe('web console OIDC login in Chromium (ztwim server run, oidc-provider)', () => {
  let dir: TmpDir;
  let op: ChildProcess | undefined;
  let opOut = '';
  let issuer = '';
  let server: Proc | undefined;
  let browser: Browser;
  let base = '';
  const socket = (): string => join(dir.path, 'api.sock');

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: scripts/setup-interop.sh installs Debian's chromium (or set ZTWIM_CHROMIUM)`);
    assert.ok(
      existsSync(join(REPO_ROOT, 'node_modules', 'oidc-provider', 'package.json')),
      'oidc-provider is not installed: npm ci installs it (a devDependency)',
    );
    dir = makeTmpDir('ztwim-console-oidc-');
    const consolePort = await freePort();
    base = `http://127.0.0.1:${consolePort}/`;
    // The OpenID Provider, its client registered with the console's callback.
    op = spawn(process.execPath, ['--import', 'tsx', PEER, CLIENT_ID, `${base}oidc/callback`], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    op.stdout?.on('data', (d: Buffer) => (opOut += d.toString()));
    op.stderr?.on('data', (d: Buffer) => (opOut += d.toString()));
    issuer = await until('the OpenID Provider to serve', () => /\{"issuer":"([^"]+)"\}/.exec(opOut)?.[1], 60_000);

    const conf = serverConf({
      port: await freePort(),
      socketPath: socket(),
      trustDomain: TD,
      dataDir: join(dir.path, 'data'),
      trailer: `
console {
  bind_address = "127.0.0.1"
  bind_port = ${consolePort}
  session_lifetime = "1h"
  oidc {
    issuer = "${issuer}"
    client_id = "${CLIENT_ID}"
    scopes = ["openid", "profile", "groups"]
    role_claim = "groups"
    admin_values = ["ztwim-admins"]
    viewer_values = ["ztwim-viewers"]
    post_logout_redirect_uri = "${base}"
  }
}
`,
    });
    dir.write('server.conf', conf);
    const validated = await runZtwim(dir.path, ['server', 'validate', '-config', join(dir.path, 'server.conf')]);
    assert.equal(validated.status, 0, validated.stderr + validated.stdout);
    assert.match(validated.stdout, /Configuration is valid/);

    server = startZtwim(dir, ['server', 'run', '-config', join(dir.path, 'server.conf')]);
    await until('the console beside the server', () => (/console: Listening/.test(server?.out() ?? '') ? true : undefined), 60_000);
    await until(
      'the server API',
      async () => ((await runZtwim(dir.path, ['server', 'healthcheck', '-socketPath', socket()])).status === 0 ? true : undefined),
      60_000,
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  });

  after(async () => {
    await browser?.close();
    if (server !== undefined) await stopProc(server);
    if (op !== undefined && op.exitCode === null) {
      const exited = new Promise((r) => op?.once('exit', r));
      op.kill('SIGTERM');
      await exited;
    }
    dir?.cleanup();
  });

  /** Clicks "Log in with OIDC" and signs in at the provider's dev login pages as `user`. */
  async function oidcLogin(page: Page, user: string): Promise<void> {
    await page.goto(base);
    await page.click('#login-oidc');
    await page.waitForURL((u) => u.href.startsWith(issuer));
    await page.fill('input[name="login"]', user);
    await page.fill('input[name="password"]', 'any password');
    await page.click('button[type="submit"]');
    // The provider asks once for consent to the scopes.
    await page.waitForURL((u) => !u.href.startsWith(issuer) || u.pathname.startsWith('/interaction/'));
    if (page.url().startsWith(issuer)) await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.href.startsWith(base));
  }

  it('logs an admin in at the provider, who then creates an entry the CLI lists', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await oidcLogin(page, 'admin');
    await page.waitForSelector('#server-td');
    assert.equal(await page.textContent('#role'), 'admin');
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === 'ztwim_console_session');
    assert.ok(session !== undefined, JSON.stringify(cookies));
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(
      cookies.find((c) => c.name === 'ztwim_console_oidc'),
      undefined,
      'the login cookie is gone once used',
    );

    await page.goto(`${base}#/entries`);
    await page.fill('#entry-spiffe-id', `spiffe://${TD}/by-oidc-admin`);
    await page.fill('#entry-parent-id', `spiffe://${TD}/host`);
    await page.selectOption('#entry-sel-type', 'unix');
    await page.selectOption('#entry-sel-kind', 'uid:');
    await page.fill('#entry-sel-value', '4343');
    await page.click('#entry-sel-add');
    await page.click('#entry-submit');
    await page.waitForSelector(`#entries td.spiffe-id:text-is("spiffe://${TD}/by-oidc-admin")`);
    const shown = await runZtwim(dir.path, ['server', 'entry', 'show', '-socketPath', socket(), '-spiffeID', `spiffe://${TD}/by-oidc-admin`]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /Selector\s+: unix:uid:4343/);

    // Logout ends the console session, then the provider's (its end-session page).
    await page.goto(base);
    await page.waitForSelector('#role');
    await page.click('header button');
    await page.waitForURL((u) => u.href.startsWith(issuer));
    const after = await context.request.get(`${base}api/session`);
    assert.equal(after.status(), 401);
    await context.close();
  });

  it('logs a viewer in read-only: its write is refused', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await oidcLogin(page, 'viewer');
    await page.waitForSelector('#server-td');
    assert.equal(await page.textContent('#role'), 'viewer');
    await page.goto(`${base}#/entries`);
    await page.waitForSelector('#entries');
    assert.equal(await page.locator('#entry-form').count(), 0);
    const body = JSON.stringify({
      entries: [{ spiffeId: `spiffe://${TD}/by-viewer`, parentId: `spiffe://${TD}/host`, selectors: [{ type: 'unix', value: 'uid:1' }] }],
    });
    const answer = await page.evaluate(async (b) => {
      const s = (await (await fetch('/api/session')).json()) as { csrf: string };
      const r = await fetch('/api/entries', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrf }, body: b });
      return { status: r.status, body: await r.text() };
    }, body);
    assert.equal(answer.status, 403);
    assert.match(answer.body, /this login is read-only/);
    const shown = await runZtwim(dir.path, ['server', 'entry', 'show', '-socketPath', socket(), '-spiffeID', `spiffe://${TD}/by-viewer`]);
    assert.match(shown.stdout, /Found 0 entries/);
    await context.close();
  });

  it('refuses a login whose groups hold no console role, with a page saying why', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await oidcLogin(page, 'mallory');
    await page.waitForSelector('#login-refused');
    const text = (await page.textContent('#login-refused')) ?? '';
    assert.match(text, /mallory has no role in this console: the "groups" claim holds "staff"/);
    const session = await context.request.get(`${base}api/session`);
    assert.equal(session.status(), 401);
    await context.close();
  });

  it('keeps the login token working beside OIDC (the link logged once at start)', async () => {
    const link = /"url":"(http:\/\/127\.0\.0\.1:\d+\/#token=[^"]+)","msg":"console: Admin login link/.exec(server?.out() ?? '');
    assert.ok(link !== null, server?.out());
    const token = (link[1] as string).split('#token=')[1] as string;
    const r = await fetch(`${base}api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { role: string }).role, 'admin');
    const options = (await (await fetch(`${base}api/login-options`)).json()) as { token: boolean; oidc: boolean };
    assert.deepEqual(options, { token: true, oidc: true });
  });
});
