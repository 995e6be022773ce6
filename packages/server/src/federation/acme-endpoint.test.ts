// The bundle endpoint's https_web profile with ACME (SPIRE's `profile "https_web" { acme {...} }`)
// against pebble, Let's Encrypt's test CA: pebble's validation authority really connects to the
// endpoint's own port with ALPN acme-tls/1 (tls-alpn-01, as SPIRE's autocert answers), the
// certificate it issues is served, renewed before expiry (fake clock), and reused from the cache.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { freePorts, startPebble, type Pebble } from '@ztwim/acme/testing';
import { cryptoRandom, runTasks } from '@ztwim/core';
import { SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import { captureLogs, FakeClock, holdsFor, issueServerCert, makeCa, tempDir, waitUntil, type TestCa } from '@ztwim/testkit';
import { SqliteDataStore } from '../datastore/sqlite/sqlite-datastore.ts';
import { spiffeBundleToInput } from './bundle-json.ts';
import type { FederationConfig } from './config.ts';
import { createFederation, type Federation } from './wiring.ts';

interface Served {
  readonly status: number;
  readonly body: string;
  readonly fingerprint: string;
  readonly issuer: string;
}

/** GET / on the endpoint as a web client would: SNI localhost, pebble's roots trusted. */
function getBundle(port: number, ca: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', servername: 'localhost', ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const peer = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate();
        resolve({ status: res.statusCode ?? 0, body, fingerprint: peer?.fingerprint256 ?? '', issuer: peer?.issuer ?? '' });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('bundle endpoint https_web with ACME (pebble, tls-alpn-01)', () => {
  let ca: TestCa;
  let pebble: Pebble;
  let port: number;
  let dir: string;
  let ds: SqliteDataStore;
  const { log, lines } = captureLogs();
  const feds: Federation[] = [];
  const td = TrustDomain.parse('a.test');

  before(async () => {
    ca = makeCa();
    dir = tempDir('ztwim-fed-acme-');
    const listener = issueServerCert(ca, 'pebble', ['localhost'], ['127.0.0.1']);
    // Pebble's VA connects to localhost:tlsPort for tls-alpn-01: the bundle endpoint's own port.
    [port] = (await freePorts(1)) as [number];
    pebble = await startPebble({
      dir: ca.dir,
      listenerCertPath: listener.certPath,
      listenerKeyPath: listener.keyPath,
      listenerCaPem: ca.certPem,
      tlsPort: port,
    });
    ds = await SqliteDataStore.open({ path: join(dir, 'ds.sqlite3'), clock: new FakeClock(), random: cryptoRandom });
    const own = new X509Certificate(ca.certPem).raw;
    await ds.setBundle(spiffeBundleToInput(SpiffeBundle.fromParts(td, { x509: [new Uint8Array(own)] })));
  });
  after(async () => {
    for (const f of [...feds]) await stop(f);
    await ds?.close();
    await pebble?.stop();
    for (const d of [dir, ca?.dir]) if (d !== undefined) rmSync(d, { recursive: true, force: true });
  });

  const config = (overrides: { tosAccepted?: boolean; cacheDir?: string } = {}): FederationConfig => ({
    bundleEndpoint: {
      address: '127.0.0.1',
      port,
      refreshHintSeconds: 300,
      profile: {
        kind: 'https_web',
        acme: {
          domainName: 'localhost',
          email: 'ops@example.org',
          directoryUrl: pebble.directoryUrl,
          tosAccepted: overrides.tosAccepted ?? true,
          cacheDir: overrides.cacheDir ?? join(dir, 'bundle-acme'),
        },
      },
    },
    federatesWith: [],
  });
  const start = async (clock: FakeClock, cfg: FederationConfig): Promise<Federation> => {
    const f = createFederation({ config: cfg, dataStore: ds, trustDomain: td, clock, log, acmeDirectoryCaPem: ca.certPem });
    feds.push(f);
    // https_web never serves the server SVID. The ACME renewal loop is a task for the server's
    // runner (server.ts), run here as the server runs it; nothing renews without it.
    const tasks = await f.start({ certPem: '', keyPem: '' });
    assert.equal(tasks.length, 1, 'the ACME renewal loop, handed to the runner');
    const ac = new AbortController();
    running.set(f, { ac, done: runTasks(tasks, ac.signal) });
    return f;
  };
  const running = new Map<Federation, { ac: AbortController; done: Promise<void> }>();
  const stop = async (f: Federation): Promise<void> => {
    feds.splice(feds.indexOf(f), 1);
    // As the server's runner stops: the loop is aborted and the federation closed together (an
    // ACME request in flight is cut off, not awaited into the cache), then the loop has ended.
    const r = running.get(f);
    r?.ac.abort();
    await f.stop();
    await r?.done;
  };
  /** Fires due fake-clock timers until check() holds (the ACME exchange itself is real I/O). */
  const pump = (clock: FakeClock, check: () => boolean, what: string): Promise<void> =>
    waitUntil(
      () => {
        clock.advance(0);
        return check();
      },
      60_000,
      what,
    );

  it('terms of service not accepted: the CA refuses, the error is logged and retried, the endpoint keeps listening without a certificate', async () => {
    const clock = new FakeClock(Date.now());
    const fed = await start(clock, config({ tosAccepted: false, cacheDir: join(dir, 'no-tos') }));
    await pump(clock, () => lines.some((l) => l.msg === 'ACME certificate request failed'), 'the refusal is logged');
    const failed = lines.find((l) => l.msg === 'ACME certificate request failed');
    assert.match(String(failed?.err), /acme: cannot obtain certificate: .*terms of service/i);
    await assert.rejects(tlsPeerPem(port), /alert|ECONNRESET|socket hang up/i);
    // Retried after 10 s, not at once.
    const before = lines.filter((l) => l.msg === 'ACME certificate request failed').length;
    clock.advance(9_000);
    // A due retry starts within a few event-loop turns of the clock step: 300 ms would show it.
    await holdsFor('no retry before 10 s', () => lines.filter((l) => l.msg === 'ACME certificate request failed').length === before, { forMs: 300 });
    clock.advance(1_000);
    await pump(clock, () => lines.filter((l) => l.msg === 'ACME certificate request failed').length > before, 'the retry after 10 s');
    await stop(fed);
  });

  it('obtains a certificate through tls-alpn-01 on the endpoint port, serves the bundle with it, renews it, reuses the cache', async () => {
    const trust = await pebble.issuerPem();
    const clock = new FakeClock(Date.now());
    const fed = await start(clock, config());
    assert.equal(fed.endpointPort(), port);
    await pump(clock, () => lines.some((l) => l.msg === 'ACME certificate obtained'), 'the acme certificate is obtained');
    assert.match(pebble.log(), /set VALID by completed challenge/);
    assert.doesNotMatch(pebble.log(), /validate w\/ HTTP/, 'no http-01');
    // Pebble's validation authority (three perspectives) connected to our port offering acme-tls/1.
    assert.ok(
      lines.some((l) => l.msg === 'Answered an ACME tls-alpn-01 challenge' && l.server_name === 'localhost'),
      'tls-alpn-01 answered on the endpoint port',
    );
    const first = await getBundle(port, trust);
    assert.equal(first.status, 200);
    assert.match(first.issuer, /Pebble Intermediate CA/);
    const served = SpiffeBundle.parse(td, first.body, { strict: true });
    assert.equal(served.refreshHintSeconds, 300);
    assert.equal(served.x509Authorities().length, 1);

    // Renewal: due at a third of the lifetime left, or 30 days before expiry (autocert's), whichever first.
    const leaf = new X509Certificate((await tlsPeerPem(port)) ?? '');
    assert.equal(leaf.fingerprint256, first.fingerprint);
    const notAfter = new Date(leaf.validTo).getTime();
    const life = notAfter - new Date(leaf.validFrom).getTime();
    const renewAt = notAfter - Math.min(life / 3, 30 * 24 * 3600_000);
    const obtained = lines.filter((l) => l.msg === 'ACME certificate obtained').length;
    clock.set(renewAt - 60_000);
    // A due renewal starts within a few event-loop turns of the clock step: 200 ms would show it.
    await holdsFor('not renewed before it is due', () => lines.filter((l) => l.msg === 'ACME certificate obtained').length === obtained, { forMs: 200 });
    assert.equal((await getBundle(port, trust)).fingerprint, first.fingerprint, 'not renewed before it is due');
    clock.set(renewAt);
    await pump(clock, () => lines.filter((l) => l.msg === 'ACME certificate obtained').length > obtained, 'the certificate is renewed');
    const second = await getBundle(port, trust);
    assert.equal(second.status, 200);
    assert.notEqual(second.fingerprint, first.fingerprint);
    await stop(fed);

    // Restarted with the cache and pebble gone: the cached certificate is served at once.
    await pebble.stop();
    const again = await start(new FakeClock(Date.now()), config());
    assert.equal((await getBundle(port, trust)).fingerprint, second.fingerprint);
    await stop(again);
  });
});

/** The certificate the endpoint presents to a plain (non-ACME) client, in PEM. */
function tlsPeerPem(port: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const pem = s.getPeerX509Certificate()?.toString();
      s.end();
      resolve(pem);
    });
    s.on('error', reject);
  });
}
