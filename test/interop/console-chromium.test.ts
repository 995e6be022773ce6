// The web console in a real browser: Debian's chromium driven by playwright-core, against the
// console `ztwim up` starts. Logs in through the banner's link, creates an entry with the
// selector builder and sees the CLI list it, sees an entry made by the CLI appear without a
// reload, explains a workload that lacks one selector, renders hostile selector values and hints
// as inert text, shows an entry edited with the CLI change on an open page, draws the dashboard
// from the server's own metrics (SVIDs issued per minute after Workload API fetches, the CA on the
// rotation timeline), bans a second agent and watches its Workload API stop, and refuses
// unauthenticated, cross-origin and CSRF-less calls and a read-only login's writes. With
// ZTWIM_CONSOLE_SCREENSHOTS=1 it writes each page to docs/console/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ZTWIM_VERSION } from '@ztwim/core';
import { makeCa } from '@ztwim/testkit';
import { freePort } from './lib/net.ts';
import { agentConf } from './lib/server-conf.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { until } from './lib/wait.ts';
import { startZtwim, stopProc, type Proc } from './lib/ztwim-cli.ts';
import { createEntry, startUp, stopUp, ztwim, type Up } from './lib/ztwim-up.ts';

const CHROMIUM = process.env['ZTWIM_CHROMIUM'] ?? '/usr/bin/chromium';
const TD = 'example.org';
const SHOTS = process.env['ZTWIM_CONSOLE_SCREENSHOTS'] === '1' ? join(import.meta.dirname, '..', '..', 'docs', 'console') : undefined;
// Hostile values: stored by the server as they are (selector values and hints are free text).
const XSS_SELECTOR = 'user:<img src=x onerror="window.__xss=1">';
const XSS_HINT = '<script>window.__xss=2</script>';

describe('web console in Chromium (ztwim up)', () => {
  let dir: TmpDir;
  let up: Up;
  let browser: Browser;
  let page: Page;
  let base = '';
  let adminToken = '';
  let viewerToken = '';
  let extraAgent: Proc | undefined;
  const server = (): string => join(dir.path, 'server.sock');
  const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } => ztwim(dir, ...args);

  const shot = async (name: string): Promise<void> => {
    if (SHOTS === undefined) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: scripts/setup-interop.sh installs Debian's chromium (or set ZTWIM_CHROMIUM)`);
    dir = makeTmpDir('ztwim-console-');
    const consolePort = await freePort();
    // The server's Prometheus endpoint too: the console's dashboard reads it (up wires it).
    const metricsPort = await freePort();
    up = await startUp(dir, { server: 0, oidc: 0 }, ['-consolePort', String(consolePort), '-metricsPort', String(metricsPort)]);
    const m = /web console: +(http:\/\/\S+)#token=(\S+)\n\s+\(read-only login token: (\S+)\)/.exec(up.out());
    assert.ok(m !== null, `no console line in the banner:\n${up.out()}`);
    base = m[1] as string;
    adminToken = m[2] as string;
    viewerToken = m[3] as string;
    assert.equal(base, `http://127.0.0.1:${consolePort}/`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await browser?.close();
    if (extraAgent !== undefined) await stopProc(extraAgent);
    if (up !== undefined) await stopUp(up);
    dir?.cleanup();
  });

  it('logs in through the link the banner prints, and shows the server', async () => {
    await page.goto(`${base}#token=${adminToken}`);
    await page.waitForSelector('#server-td');
    assert.equal(await page.textContent('#server-td'), TD);
    assert.equal(await page.textContent('#role'), 'admin');
    // The token left the address bar once used.
    assert.ok(!page.url().includes('token='), page.url());
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'ztwim_console_session');
    assert.ok(session !== undefined);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
  });

  it('creates an entry with the selector builder, and the CLI lists it', async () => {
    await page.goto(`${base}#/entries`);
    await page.fill('#entry-spiffe-id', `spiffe://${TD}/from-console`);
    await page.fill('#entry-parent-id', `spiffe://${TD}/host`);
    await page.selectOption('#entry-sel-type', 'unix');
    await page.selectOption('#entry-sel-kind', 'uid:');
    await page.fill('#entry-sel-value', '4242');
    await page.click('#entry-sel-add');
    await page.fill('#entry-sel-value', 'db');
    await page.selectOption('#entry-sel-kind', 'group:');
    await page.click('#entry-sel-add');
    await page.click('#entry-submit');
    await page.waitForSelector(`#entries td.spiffe-id:text-is("spiffe://${TD}/from-console")`);
    const shown = cli('server', 'entry', 'show', '-socketPath', server(), '-spiffeID', `spiffe://${TD}/from-console`);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /Selector\s+: unix:group:db/);
    assert.match(shown.stdout, /Selector\s+: unix:uid:4242/);
    assert.match(shown.stdout, new RegExp(`Parent ID\\s+: spiffe://${TD}/host`));
  });

  it('works from the keyboard alone: moves between pages, builds an entry and submits it', async () => {
    /** Presses Tab until `selector` has the focus (fails if it is not reachable by Tab). */
    const tabTo = async (selector: string): Promise<void> => {
      for (let i = 0; i < 80; i++) {
        if (await page.locator(selector).evaluate((el) => el === (el.ownerDocument as { activeElement: unknown }).activeElement)) return;
        await page.keyboard.press('Tab');
      }
      assert.fail(`${selector} not reachable with Tab`);
    };
    await page.goto(`${base}#/`);
    await page.waitForSelector('#server-td');
    await tabTo('nav a[href="#/entries"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#entry-spiffe-id');
    await tabTo('#entry-spiffe-id');
    await page.keyboard.type(`spiffe://${TD}/by-keyboard`);
    await tabTo('#entry-parent-id');
    await page.keyboard.type(`spiffe://${TD}/host`);
    await tabTo('#entry-sel-type');
    await page.keyboard.type('unix');
    assert.equal(await page.inputValue('#entry-sel-type'), 'unix');
    await tabTo('#entry-sel-kind');
    await page.keyboard.type('uid');
    assert.equal(await page.inputValue('#entry-sel-kind'), 'uid:');
    await tabTo('#entry-sel-value');
    await page.keyboard.type('4343');
    await page.keyboard.press('Enter'); // adds the selector
    assert.equal(await page.locator('#entry-form .chip', { hasText: 'unix:uid:4343' }).count(), 1);
    await tabTo('#entry-submit');
    await page.keyboard.press('Enter');
    await page.waitForSelector(`#entries td.spiffe-id:text-is("spiffe://${TD}/by-keyboard")`);
    const shown = cli('server', 'entry', 'show', '-socketPath', server(), '-spiffeID', `spiffe://${TD}/by-keyboard`);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /Selector\s+: unix:uid:4343/);
  });

  it('shows an entry the CLI creates without a reload, with hostile values as inert text', async () => {
    await page.goto(`${base}#/entries`);
    await page.waitForSelector('#entries');
    createEntry(dir, `spiffe://${TD}/host`, `spiffe://${TD}/from-cli`, [`unix:${XSS_SELECTOR}`], '-hint', XSS_HINT);
    await page.waitForSelector(`#entries td.spiffe-id:text-is("spiffe://${TD}/from-cli")`, { timeout: 15_000 });
    const chipText = await page.locator('#entries .chip', { hasText: 'onerror' }).first().textContent();
    assert.equal(chipText, `unix:${XSS_SELECTOR}`);
    assert.equal(await page.locator('#entries img').count(), 0);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss), undefined);
    await shot('entries');
  });

  it('shows an entry the CLI edits (same count) on an open page, without a reload', async () => {
    createEntry(dir, `spiffe://${TD}/host`, `spiffe://${TD}/to-edit`, ['unix:uid:7001']);
    await page.goto(`${base}#/entries`);
    const row = page.locator('#entries tr', { hasText: `spiffe://${TD}/to-edit` });
    await row.locator('.chip:text-is("unix:uid:7001")').waitFor();
    await page.evaluate(() => ((globalThis as unknown as { __sameDocument?: number }).__sameDocument = 1));
    const shown = cli('server', 'entry', 'show', '-socketPath', server(), '-spiffeID', `spiffe://${TD}/to-edit`);
    const id = /Entry ID\s+: (\S+)/.exec(shown.stdout)?.[1];
    assert.ok(id !== undefined, shown.stdout);
    const count = cli('server', 'entry', 'count', '-socketPath', server()).stdout;
    const updated = cli(
      'server',
      'entry',
      'update',
      '-socketPath',
      server(),
      '-entryID',
      id,
      '-parentID',
      `spiffe://${TD}/host`,
      '-spiffeID',
      `spiffe://${TD}/to-edit`,
      '-selector',
      'unix:uid:7002',
    );
    assert.equal(updated.status, 0, updated.stderr);
    assert.equal(cli('server', 'entry', 'count', '-socketPath', server()).stdout, count, 'an edit: the entry count stays the same');
    await row.locator('.chip:text-is("unix:uid:7002")').waitFor({ timeout: 5000 });
    assert.equal(await row.locator('.chip:text-is("unix:uid:7001")').count(), 0);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: number }).__sameDocument), 1, 'the page was not reloaded');
  });

  it("draws the dashboard from the server's metrics: SVIDs per minute after fetches, signing times, the CA timeline", async () => {
    // A new entry for this user makes the agent sign an X509-SVID for it; a JWT fetch a JWT-SVID.
    const uid = process.getuid?.() ?? 0;
    createEntry(dir, `spiffe://${TD}/host`, `spiffe://${TD}/dashboard-workload`, [`unix:uid:${uid}`]);
    const agentSock = join(dir.path, 'agent.sock');
    await until('the agent to serve the new identity', () =>
      /dashboard-workload/.test(cli('api', 'fetch', 'x509', '-socketPath', agentSock).stdout) ? true : undefined,
    );
    const jwt = cli('api', 'fetch', 'jwt', '-socketPath', agentSock, '-audience', 'console-dashboard', '-spiffeID', `spiffe://${TD}/dashboard-workload`);
    assert.equal(jwt.status, 0, jwt.stderr);
    await page.goto(`${base}#/dashboard`);
    await page.waitForSelector('#traffic');
    // The console scrapes every 5 s and the page reloads its figures every 10 s.
    // (No named functions inside: tsx's helper for them does not exist in the page.)
    await page.waitForFunction(
      () => {
        const d = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> } }).document;
        let x509 = 0;
        let jwt = 0;
        for (const c of Array.from(d.querySelectorAll('#svid-table .x509-count'))) x509 += Number(c.textContent);
        for (const c of Array.from(d.querySelectorAll('#svid-table .jwt-count'))) jwt += Number(c.textContent);
        return x509 > 0 && jwt > 0;
      },
      undefined,
      { timeout: 40_000 },
    );
    const table = (await page.textContent('#svid-table')) ?? '';
    assert.match(table, /\d+(\.\d+)? ms \/ \d+(\.\d+)? ms/, `signing times in the table: ${table}`);
    assert.match((await page.getAttribute('#svid-chart', 'aria-label')) ?? '', /SVIDs issued per minute/);
    assert.ok((await page.locator('#svid-chart rect.bar').count()) > 0);
    assert.match((await page.getAttribute('#latency-chart', 'aria-label')) ?? '', /X\.509 p50 \d/);
    // Every authority of the bundle on the timeline, with "now".
    const server = await page.evaluate(async () => (await (await fetch('/api/server')).json()) as { authorities: { kind: string; name: string }[] });
    const timeline = (await page.getAttribute('#ca-timeline', 'aria-label')) ?? '';
    assert.ok(server.authorities.some((a) => a.kind === 'x509'));
    for (const a of server.authorities) assert.ok(timeline.includes(`${a.kind} ${a.name}`), `${a.kind} ${a.name} not on the timeline: ${timeline}`);
    assert.equal(await page.locator('#ca-timeline rect.span').count(), server.authorities.length);
    assert.equal(await page.textContent('#ca-timeline .now-label'), 'now');
    // The active X.509 CA and JWT key (SPIRE's LocalAuthority API) are shown as active: in the
    // server's authorities table, and on the timeline against the bundle key they match.
    const states = await page.evaluate(
      async () => (await (await fetch('/api/server')).json()) as { authorities: { kind: string; name: string; authorityId: string; state: string }[] },
    );
    for (const kind of ['x509', 'jwt']) {
      const row = page.locator(`#local-authorities tr.local-${kind}.local-active`);
      assert.equal(await row.count(), 1, `one active ${kind} authority listed`);
      assert.equal(await row.locator('.state').textContent(), 'active');
      const id = (await row.locator('td.mono').first().textContent()) ?? '';
      const inBundle = states.authorities.find((a) => a.kind === kind && a.authorityId === id);
      assert.ok(inBundle !== undefined && inBundle.state === 'active', `the active ${kind} authority ${id} is in the bundle, marked active`);
      assert.ok(timeline.includes(`${kind} ${inBundle.name} (active)`), `${kind} ${inBundle.name} marked active on the timeline: ${timeline}`);
      assert.equal(await page.locator(`#ca-timeline rect.span.${kind}.state-active`).count(), 1);
    }
    // Version, health and plugins (ztwim.server.v1.ServerInfo): what `ztwim up` configured.
    assert.equal(await page.textContent('#server-version'), ZTWIM_VERSION);
    assert.match((await page.textContent('#server-health')) ?? '', /^serving · datastore last read \d{4}-\d\d-\d\dT/);
    const plugins = await page.locator('#server-plugins tbody tr').allTextContents();
    assert.ok(
      plugins.some((r) => /^DataStore\s*sql\s*sqlite3 /.test(r)),
      `DataStore row: ${plugins.join(' | ')}`,
    );
    assert.ok(
      plugins.some((r) => /^NodeAttestor\s*join_token/.test(r)),
      `join_token row: ${plugins.join(' | ')}`,
    );
    // Entries per agent: up's own agent holds the entries under the node alias.
    await page.waitForSelector('#entries-per-agent-table tbody tr');
    assert.match((await page.textContent('#entries-per-agent-table')) ?? '', /spiffe:\/\/example\.org\/spire\/agent\/\S+\s*\d+/);
    await page.click('#traffic details summary');
    await shot('dashboard');
    if (SHOTS !== undefined) {
      await page.emulateMedia({ colorScheme: 'dark' });
      await shot('dashboard-dark');
      await page.emulateMedia({ colorScheme: 'light' });
    }
  });

  it('explains a workload that lacks one selector, naming it', async () => {
    await page.goto(`${base}#/explain`);
    await page.waitForSelector('#explain-agent option', { state: 'attached' });
    await page.selectOption('#explain-sel-type', 'unix');
    await page.selectOption('#explain-sel-kind', 'uid:');
    await page.fill('#explain-sel-value', '4242');
    await page.click('#explain-sel-add');
    await page.click('#explain-run');
    await page.waitForSelector('#explain-result');
    assert.match((await page.textContent('#explain-result')) ?? '', /No identity issued/);
    const near = (await page.textContent('#near-misses')) ?? '';
    assert.match(near, new RegExp(`spiffe://${TD}/from-console lacks unix:group:db`));
    await shot('explain');
  });

  it('explains a PID on this host: the unix selectors it has, and the one an entry wants', async () => {
    const uid = process.getuid?.() ?? 0;
    createEntry(dir, `spiffe://${TD}/host`, `spiffe://${TD}/needs-group`, [`unix:uid:${uid}`, 'unix:group:no-such-group']);
    await page.goto(`${base}#/explain`);
    await page.reload(); // a fresh Explain page, without the selectors of the test before
    await page.waitForSelector('#explain-agent option', { state: 'attached' });
    await page.fill('#explain-pid', String(process.pid));
    await page.click('#explain-run');
    await page.waitForSelector(`#explain-selectors .chip:text-is("unix:uid:${uid}")`);
    assert.match((await page.textContent('#explain-selectors')) ?? '', new RegExp(`unix:uid:${uid}`));
    assert.match((await page.textContent('#near-misses')) ?? '', new RegExp(`spiffe://${TD}/needs-group lacks unix:group:no-such-group`));
    // This process is also served the up user's own entry (uid match): the page says so.
    assert.match((await page.textContent('#explain-result')) ?? '', /The workload gets:/);
  });

  it('bans an agent, and its Workload API stops serving', async () => {
    // A second agent (its own process) attested to up's server with a join token.
    const token = cli('server', 'token', 'generate', '-socketPath', server()).stdout.match(/Token: (\S+)/)?.[1];
    assert.ok(token !== undefined);
    const bundle = cli('server', 'bundle', 'show', '-socketPath', server());
    writeFileSync(join(dir.path, 'bundle.pem'), bundle.stdout);
    const port = Number(/server API \(agents\): +127\.0\.0\.1:(\d+)/.exec(up.out())?.[1]);
    const sock = join(dir.path, 'agent2', 'api.sock');
    writeFileSync(
      join(dir.path, 'agent2.conf'),
      agentConf({
        serverPort: port,
        trustDomain: TD,
        dataDir: join(dir.path, 'agent2-data'),
        socketPath: sock,
        trustBundlePath: join(dir.path, 'bundle.pem'),
        keyManager: 'memory',
      }),
    );
    extraAgent = startZtwim(dir, ['agent', 'run', '-config', join(dir.path, 'agent2.conf'), '-joinToken', token]);
    const agentId = `spiffe://${TD}/spire/agent/join_token/${token}`;
    const uid = process.getuid?.() ?? 0;
    createEntry(dir, agentId, `spiffe://${TD}/on-agent2`, [`unix:uid:${uid}`]);
    await until('agent2 to serve its workload', () => (/on-agent2/.test(cli('api', 'fetch', 'x509', '-socketPath', sock).stdout) ? true : undefined));

    await page.goto(`${base}#/agents`);
    const row = page.locator('#agents tr', { hasText: agentId });
    await row.waitFor();
    // Last seen: agent2 has just synced with up's server (ServerInfo/GetAgentsLastSeen).
    const lastSeen = Date.parse((await row.locator('td.last-seen').textContent()) ?? '');
    assert.ok(Number.isFinite(lastSeen) && Math.abs(Date.now() - lastSeen) < 120_000, `agent2 last seen ${lastSeen}`);
    await shot('agents');
    await row.locator('button.ban').click();
    await page.locator('#agents tr', { hasText: agentId }).locator('td', { hasText: /^yes$/ }).first().waitFor();
    const shown = cli('server', 'agent', 'show', '-socketPath', server(), '-spiffeID', agentId);
    assert.match(shown.stdout, /Banned\s+: true/);
    await until('agent2 to stop serving', () => (cli('api', 'fetch', 'x509', '-socketPath', sock).status !== 0 ? true : undefined), 60_000);
  });

  it('sets a federated bundle from pasted PEM, offers it for download, refuses bad data by cause, and deletes it', async () => {
    const partner = makeCa(join(dir.path), 'partner root');
    await page.goto(`${base}#/bundle`);
    await page.waitForSelector('#set-bundle');
    // bad data first: the server's cause is shown, nothing is stored
    await page.fill('#set-bundle-td', 'partner.example');
    await page.selectOption('#set-bundle-format', 'pem');
    await page.fill('#set-bundle-data', 'not a certificate');
    await page.click('#set-bundle-submit');
    await page.waitForSelector('#set-bundle .error');
    assert.match((await page.textContent('#set-bundle .error')) ?? '', /bundle data: /);
    assert.equal(await page.locator('#federated-bundles tr', { hasText: 'partner.example' }).count(), 0);
    // the partner's root as PEM
    await page.fill('#set-bundle-data', partner.certPem);
    await page.click('#set-bundle-submit');
    const row = page.locator('#federated-bundles tr', { hasText: 'partner.example' });
    await row.waitFor();
    const listed = cli('server', 'bundle', 'list', '-socketPath', server(), '-id', 'spiffe://partner.example');
    assert.equal(listed.status, 0, listed.stderr);
    assert.equal(listed.stdout.replace(/\s+/g, ''), partner.certPem.replace(/\s+/g, ''));
    // download as PEM: the same certificate
    const href = (await row.locator('a', { hasText: 'PEM' }).getAttribute('href')) ?? '';
    const pem = await page.evaluate(async (u) => (await fetch(u)).text(), href);
    assert.equal(pem.replace(/\s+/g, ''), partner.certPem.replace(/\s+/g, ''));
    await row.locator('button.delete-bundle').click();
    await until('the partner bundle to go', async () =>
      (await page.locator('#federated-bundles tr', { hasText: 'partner.example' }).count()) === 0 ? true : undefined,
    );
    assert.notEqual(cli('server', 'bundle', 'list', '-socketPath', server(), '-id', 'spiffe://partner.example').status, 0);
  });

  it('refuses unauthenticated, cross-origin and CSRF-less calls, and a read-only login writing', async () => {
    const anon = await fetch(`${base}api/entries`);
    assert.equal(anon.status, 401);
    const login = await fetch(`${base}api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: adminToken }),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
    const { csrf } = (await login.json()) as { csrf: string };
    const body = JSON.stringify({
      entries: [{ spiffeId: `spiffe://${TD}/x`, parentId: `spiffe://${TD}/host`, selectors: [{ type: 'unix', value: 'uid:1' }] }],
    });
    const noCsrf = await fetch(`${base}api/entries`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body });
    assert.equal(noCsrf.status, 403);
    const crossOrigin = await fetch(`${base}api/entries`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': csrf, origin: 'http://evil.example' },
      body,
    });
    assert.equal(crossOrigin.status, 403);
    const wrongLogin = await fetch(`${base}api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'nope' }),
    });
    assert.equal(wrongLogin.status, 401);

    const viewer = await browser.newPage();
    await viewer.goto(`${base}#token=${viewerToken}`);
    await viewer.waitForSelector('#server-td');
    assert.equal(await viewer.textContent('#role'), 'viewer');
    await viewer.goto(`${base}#/entries`);
    await viewer.waitForSelector('#entries');
    assert.equal(await viewer.locator('#entry-form').count(), 0);
    const status = await viewer.evaluate(async (b) => {
      const s = (await (await fetch('/api/session')).json()) as { csrf: string };
      const r = await fetch('/api/entries', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrf }, body: b });
      return r.status;
    }, body);
    assert.equal(status, 403);
    await viewer.close();
  });

  it('serves every page under a CSP without inline script or style, and works at phone width', async () => {
    const res = await fetch(base);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.setViewportSize({ width: 390, height: 844 });
    for (const p of ['dashboard', 'agents', 'entries', 'bundle', 'explain']) {
      await page.goto(`${base}#/${p}`);
      await page.waitForSelector('#page section');
      const overflow = await page.evaluate(() => {
        // Runs in the page (the test's own tsconfig has no DOM types).
        const w = globalThis as unknown as { document: { documentElement: { scrollWidth: number } }; innerWidth: number };
        return w.document.documentElement.scrollWidth - w.innerWidth;
      });
      assert.ok(overflow <= 1, `${p}: page is ${overflow}px wider than a phone screen`);
    }
    await shot('entries-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${base}#/bundle`);
    await page.waitForSelector('#relationships');
    await shot('bundle');
    assert.deepEqual(violations, []);
  });
});
