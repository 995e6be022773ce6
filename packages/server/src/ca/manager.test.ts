import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { cryptoRandom, isZtwimError } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { BundlePublisher } from '../bundle/publisher.ts';
import { SqliteDataStore } from '../datastore/sqlite/sqlite-datastore.ts';
import { DiskKeyManager } from '../keymanager/disk.ts';
import { MemoryKeyManager } from '../keymanager/memory.ts';
import { opensslVerify, P384, RSA2048 } from './fixtures.test-util.ts';
import { CA_JOURNAL_NAME, Journal, journalNameFor } from './journal.ts';
import { activateAt, authorityIdOf, CaManager, prepareAt, type CaBundle } from './manager.ts';
import { createCaCertificate } from './x509-ca.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const td = TrustDomain.parse('example.org');
const web = SpiffeId.parse('spiffe://example.org/web');
const root = mkdtempSync(join(tmpdir(), 'ztwim-camgr-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirN = 0;
const freshDir = (): string => join(root, `d${dirN++}`);
/** A real SQLite datastore in the directory, closed after the tests. */
const datastores: SqliteDataStore[] = [];
after(async () => {
  for (const ds of datastores) await ds.close();
});
async function datastoreIn(dir: string, clock: FakeClock): Promise<SqliteDataStore> {
  const ds = await SqliteDataStore.open({ path: join(dir, 'datastore.sqlite3'), clock, random: cryptoRandom });
  datastores.push(ds);
  return ds;
}

const kidOf = (token: string): string | undefined => decodeProtectedHeader(token).kid;
const issuerOf = (der: Uint8Array): string => new X509Certificate(der).issuer;
const subjectOf = (der: Uint8Array): string => new X509Certificate(der).subject;
const der = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function verifyWithBundle(token: string, bundle: CaBundle, now: Date): Promise<string> {
  const jwks = createLocalJWKSet({ keys: bundle.jwtAuthorities.map((a) => a.publicKey as JWK) });
  const { payload } = await jwtVerify(token, jwks, { audience: 'rp', currentDate: now });
  return payload.sub as string;
}

describe('rotation thresholds', () => {
  it('a 24h CA is prepared after 12h and activated after 20h', () => {
    const nb = new Date(T0);
    const na = new Date(T0 + 24 * HOUR);
    assert.equal(prepareAt(nb, na), T0 + 12 * HOUR);
    assert.equal(activateAt(nb, na), T0 + 20 * HOUR);
  });
  it('long lifetimes are capped at 30d / 7d before expiry', () => {
    const nb = new Date(T0);
    const na = new Date(T0 + 365 * 24 * HOUR);
    assert.equal(prepareAt(nb, na), na.getTime() - 30 * 24 * HOUR);
    assert.equal(activateAt(nb, na), na.getTime() - 7 * 24 * HOUR);
  });
});

describe('CaManager', () => {
  it('rotates the X.509 CA and the JWT key: prepare, activate, prune', async () => {
    const clock = new FakeClock(T0);
    const m = new CaManager({ ca: { trustDomain: 'example.org' }, keyManager: new MemoryKeyManager(), clock });
    const updates: CaBundle[] = [];
    m.onBundleUpdate((b) => updates.push(b));
    const activated: string[] = [];
    m.onActivate((ca) => activated.push(der(ca.certificate)));
    await m.start();

    // start: empty slots are prepared and activated at once, and published
    assert.equal(updates.length, 1);
    const caA = m.x509Ca();
    const kidA = m.jwtSigner().kid;
    assert.equal(m.nextX509Ca(), undefined);
    assert.deepEqual(m.bundle().x509Authorities.map(der), [der(caA.certificate)]);
    assert.deepEqual(
      m.bundle().jwtAuthorities.map((a) => a.kid),
      [kidA],
    );
    assert.equal(caA.notAfter.getTime(), T0 + 24 * HOUR);

    // just before half-life nothing changes
    clock.set(T0 + 12 * HOUR - 10_000);
    await m.tick();
    assert.equal(updates.length, 1);
    assert.equal(m.nextX509Ca(), undefined);

    // prepare: the new CA and key are in the bundle, but signing still uses the old ones
    clock.set(T0 + 12 * HOUR + 1000);
    await m.tick();
    assert.equal(updates.length, 2);
    const caB = m.nextX509Ca();
    const kidB = m.nextJwtSigner()?.kid;
    assert.ok(caB && kidB && kidB !== kidA);
    const b2 = updates[1] as CaBundle;
    assert.deepEqual(b2.x509Authorities.map(der), [der(caA.certificate), der(caB.certificate)]);
    assert.deepEqual(
      b2.jwtAuthorities.map((a) => a.kid),
      [kidA, kidB],
    );
    assert.ok(b2.sequence > (updates[0] as CaBundle).sequence);
    assert.equal(m.x509Ca(), caA);
    const preparedSvid = m.signX509Svid({ publicKey: P384.publicKey, spiffeId: web });
    assert.equal(issuerOf(preparedSvid.certChain[0] as Uint8Array), subjectOf(caA.certificate));
    assert.equal(kidOf((await m.signJwtSvid({ spiffeId: web, audience: ['rp'] })).token), kidA);

    // near rotation an SVID from the old CA is capped at the old CA's notAfter
    clock.set(T0 + 19 * HOUR);
    await m.tick();
    const capped = m.signX509Svid({ publicKey: P384.publicKey, spiffeId: web, ttlMs: 6 * HOUR });
    assert.equal(capped.notAfter.getTime(), caA.notAfter.getTime());
    assert.equal(new Date(new X509Certificate(capped.certChain[0] as Uint8Array).validTo).getTime(), caA.notAfter.getTime());

    clock.set(T0 + 20 * HOUR - 60_000);
    await m.tick();
    const oldToken = (await m.signJwtSvid({ spiffeId: web, audience: ['rp'] })).token;
    const oldSvid = m.signX509Svid({ publicKey: P384.publicKey, spiffeId: web });
    assert.equal(kidOf(oldToken), kidA);

    // activate: signing switches to the prepared CA and key; the old ones stay in the bundle
    clock.set(T0 + 20 * HOUR + 1000);
    await m.tick();
    assert.equal(m.x509Ca(), caB);
    assert.equal(m.jwtSigner().kid, kidB);
    assert.equal(m.nextX509Ca(), undefined);
    assert.equal(updates.length, 2, 'activation does not change the bundle');
    assert.deepEqual(activated, [der(caB.certificate)], 'activation listeners hear about the switch only');
    const newToken = (await m.signJwtSvid({ spiffeId: web, audience: ['rp'] })).token;
    assert.equal(kidOf(newToken), kidB);
    const newSvid = m.signX509Svid({ publicKey: P384.publicKey, spiffeId: web });
    assert.equal(issuerOf(newSvid.certChain[0] as Uint8Array), subjectOf(caB.certificate));

    // a relying party with the current bundle accepts both generations during the overlap
    const overlap = m.bundle();
    assert.equal(await verifyWithBundle(oldToken, overlap, clock.now()), web.toString());
    assert.equal(await verifyWithBundle(newToken, overlap, clock.now()), web.toString());
    for (const svid of [oldSvid, newSvid]) {
      const r = opensslVerify(svid.certChain[0] as Uint8Array, overlap.x509Authorities, { atTime: clock.now() });
      assert.ok(r.ok, r.output);
    }
    // ...while a party that only knew the first bundle rejects the new generation
    const stale = updates[0] as CaBundle;
    assert.ok(!opensslVerify(newSvid.certChain[0] as Uint8Array, stale.x509Authorities, { atTime: clock.now() }).ok);
    await assert.rejects(verifyWithBundle(newToken, stale, clock.now()));

    // the old CA and key leave the bundle once expired
    clock.set(T0 + 24 * HOUR - 10_000);
    await m.tick();
    assert.equal(updates.length, 2);
    clock.set(T0 + 24 * HOUR);
    await m.tick();
    assert.equal(updates.length, 3);
    const pruned = updates[2] as CaBundle;
    const prunedX509 = pruned.x509Authorities.map(der);
    assert.ok(!prunedX509.includes(der(caA.certificate)), 'old CA pruned');
    assert.equal(prunedX509[0], der(caB.certificate));
    assert.deepEqual(
      pruned.jwtAuthorities.map((a) => a.kid),
      [kidB],
    );
    const fresh = await m.signJwtSvid({ spiffeId: web, audience: ['rp'] });
    assert.equal(fresh.kid, kidB);
    assert.equal(await verifyWithBundle(fresh.token, pruned, clock.now()), web.toString());
    // even at a time when it was valid, a token of the retired key no longer verifies
    await assert.rejects(verifyWithBundle(oldToken, pruned, new Date(T0 + 20 * HOUR)), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
    await assert.doesNotReject(verifyWithBundle(oldToken, overlap, new Date(T0 + 20 * HOUR)));

    // and the cycle repeats on the new CA's own schedule (its ½ life falls 10s early due to the backdating)
    const caC = m.nextX509Ca();
    assert.ok(caC);
    assert.equal(m.x509Ca(), caB);
    assert.deepEqual(prunedX509, [der(caB.certificate), der(caC.certificate)]);
  });

  it('rotates from its task every interval, arms no timer of its own, and stops on abort', async () => {
    const clock = new FakeClock(T0);
    const m = new CaManager({ ca: { trustDomain: 'example.org', caTtlMs: 60_000 }, keyManager: new MemoryKeyManager(), clock, rotationIntervalMs: 10_000 });
    await m.start();
    assert.equal(clock.pending(), 0);
    const stop = new AbortController();
    const running = m.task()(stop.signal);
    await clock.waitForTimers(1);
    for (let i = 0; i < 2; i++) {
      clock.advance(10_000);
      await clock.waitForTimers(1);
    }
    // the CA lives 70 s (backdated 10 s): its half life ends at 25 s, so the third pass prepares
    assert.equal(m.nextX509Ca(), undefined);
    clock.advance(10_000);
    await clock.waitForTimers(1);
    assert.ok(m.nextX509Ca());
    stop.abort();
    await running;
    assert.equal(clock.pending(), 0);
  });

  it('activates a prepared key only once it has been stored in the bundle for the activation delay', async () => {
    const clock = new FakeClock(T0);
    let storeUp = true;
    const stored: CaBundle[] = [];
    const m = new CaManager({
      ca: { trustDomain: 'example.org', caTtlMs: 24 * HOUR },
      keyManager: new MemoryKeyManager(),
      clock,
      activationDelayMs: 10 * 60_000,
      publishBundle: async (b) => {
        if (!storeUp) throw new Error('datastore unavailable');
        stored.push(b);
      },
    });
    await m.start();
    const caA = m.x509Ca();
    assert.equal(stored.length, 1);
    // prepared at 13 h while the datastore is away: the pass fails, the key is not stored
    storeUp = false;
    clock.set(T0 + 13 * HOUR);
    await assert.rejects(m.tick(), /datastore unavailable/);
    const caB = m.nextX509Ca();
    assert.ok(caB !== undefined);
    // past the activation threshold (20 h) the key was never stored: A keeps signing
    clock.set(T0 + 21 * HOUR);
    await assert.rejects(m.tick(), /datastore unavailable/);
    assert.equal(m.x509Ca(), caA);
    // stored at 21 h: signs 10 minutes later, not before
    storeUp = true;
    await m.tick();
    assert.deepEqual(stored.at(-1)?.x509Authorities.map(der), [der(caA.certificate), der(caB.certificate)]);
    assert.equal(m.x509Ca(), caA);
    clock.advance(9 * 60_000);
    await m.tick();
    assert.equal(m.x509Ca(), caA);
    clock.advance(60_000);
    await m.tick();
    assert.equal(m.x509Ca(), caB);
  });

  it('signs with RS256 when the JWT key type is RSA', async () => {
    const clock = new FakeClock(T0);
    const m = new CaManager({ ca: { trustDomain: 'example.org', jwtKeyType: 'rsa-2048' }, keyManager: new MemoryKeyManager(), clock });
    await m.start();
    const { token } = await m.signJwtSvid({ spiffeId: web, audience: ['rp'] });
    assert.equal(decodeProtectedHeader(token).alg, 'RS256');
    assert.equal(m.bundle().jwtAuthorities[0]?.publicKey.kty, 'RSA');
    assert.equal(await verifyWithBundle(token, m.bundle(), clock.now()), web.toString());
  });

  it('reuses the same CA and JWT key after a restart with the disk key manager', async () => {
    const dir = freshDir();
    const clock = new FakeClock(T0);
    const journal = new Journal({ store: await datastoreIn(dir, clock) });
    const make = (): CaManager =>
      new CaManager({ ca: { trustDomain: 'example.org' }, keyManager: new DiskKeyManager({ path: join(dir, 'keys.json') }), clock, journal });
    const m1 = make();
    await m1.start();
    clock.set(T0 + 13 * HOUR);
    await m1.tick(); // prepared next slot must survive too
    const before = {
      ca: m1.x509Ca().certificate,
      next: m1.nextX509Ca()?.certificate,
      kid: m1.jwtSigner().kid,
      nextKid: m1.nextJwtSigner()?.kid,
      bundle: m1.bundle(),
    };

    const m2 = make();
    const updates: CaBundle[] = [];
    m2.onBundleUpdate((b) => updates.push(b));
    await m2.start();
    assert.deepEqual(m2.x509Ca().certificate, before.ca);
    assert.deepEqual(m2.nextX509Ca()?.certificate, before.next);
    assert.equal(m2.jwtSigner().kid, before.kid);
    assert.equal(m2.nextJwtSigner()?.kid, before.nextKid);
    assert.deepEqual(m2.bundle(), before.bundle);
    assert.equal(updates.length, 0, 'a restart with everything in place publishes nothing new');
    // the restored key really is the CA key: openssl accepts what the restarted CA signs
    const svid = m2.signX509Svid({ publicKey: P384.publicKey, spiffeId: web });
    assert.ok(opensslVerify(svid.certChain[0] as Uint8Array, before.bundle.x509Authorities, { atTime: clock.now() }).ok);
    assert.equal(await verifyWithBundle((await m2.signJwtSvid({ spiffeId: web, audience: ['rp'] })).token, before.bundle, clock.now()), web.toString());
  });

  it('creates a new CA after a restart with the memory key manager, keeping the old CA published', async () => {
    const dir = freshDir();
    const clock = new FakeClock(T0);
    const ds = await datastoreIn(dir, clock);
    const journal = new Journal({ store: ds });
    const publisher = new BundlePublisher({ dataStore: ds, trustDomain: TrustDomain.parse('example.org'), clock });
    const make = (): CaManager =>
      new CaManager({ ca: { trustDomain: 'example.org' }, keyManager: new MemoryKeyManager(), clock, journal, publishBundle: (b) => publisher.publish(b) });
    const m1 = make();
    await m1.start();
    clock.advance(HOUR);
    const m2 = make();
    await m2.start();
    assert.notDeepEqual(m2.x509Ca().certificate, m1.x509Ca().certificate);
    assert.notEqual(m2.jwtSigner().kid, m1.jwtSigner().kid);
    // m2 has its own journal (its key manager has none of m1's keys): its bundle holds its own keys,
    // and the stored bundle, appended to by both, still holds m1's
    assert.deepEqual(m2.bundle().x509Authorities.map(der), [der(m2.x509Ca().certificate)]);
    const stored = await ds.getBundle('example.org');
    assert.deepEqual(
      stored?.x509Authorities.map((a) => der(a.asn1)),
      [der(m1.x509Ca().certificate), der(m2.x509Ca().certificate)],
    );
    assert.deepEqual(
      stored?.jwtAuthorities.map((a) => a.keyId),
      [m1.jwtSigner().kid, m2.jwtSigner().kid],
    );
  });

  it('fails to start on a corrupt journal, naming it', async () => {
    const dir = freshDir();
    const clock = new FakeClock(T0);
    const ds = await datastoreIn(dir, clock);
    const journal = new Journal({ store: ds });
    const m1 = new CaManager({ ca: { trustDomain: 'example.org' }, keyManager: new MemoryKeyManager(), clock, journal });
    await m1.start();
    const saved = JSON.parse(Buffer.from((await ds.getCaJournal(journalNameFor(authorityIdOf(m1.x509Ca())))) ?? []).toString()) as Record<string, unknown>;
    assert.equal(saved['version'], 1);
    const cases = ['{"version":1,', JSON.stringify({ ...saved, version: 7 })];
    for (const content of cases) {
      await ds.setCaJournal(CA_JOURNAL_NAME, Buffer.from(content));
      const m2 = new CaManager({ ca: { trustDomain: 'example.org' }, keyManager: new MemoryKeyManager(), clock, journal });
      await assert.rejects(
        m2.start(),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message.includes(`journal "${CA_JOURNAL_NAME}" in the datastore`) && e.message.includes('corrupt'),
      );
    }
  });

  it('takes over the journal file of an older version when the datastore has none', async () => {
    const dir = freshDir();
    const clock = new FakeClock(T0);
    const keys = join(dir, 'keys.json');
    const oldDs = await datastoreIn(join(dir, 'old'), clock);
    const older = new Journal({ store: oldDs });
    const m1 = new CaManager({ ca: { trustDomain: 'example.org' }, keyManager: new DiskKeyManager({ path: keys }), clock, journal: older });
    await m1.start();
    // what the file journal held: the same JSON document
    const file = join(dir, 'ca-journal.json');
    writeFileSync(file, Buffer.from((await oldDs.getCaJournal(journalNameFor(authorityIdOf(m1.x509Ca())))) ?? []));
    const ds = await datastoreIn(dir, clock);
    const m2 = new CaManager({
      ca: { trustDomain: 'example.org' },
      keyManager: new DiskKeyManager({ path: keys }),
      clock,
      journal: new Journal({ store: ds, legacyFile: file }),
    });
    await m2.start();
    assert.deepEqual(m2.x509Ca().certificate, m1.x509Ca().certificate);
    assert.equal(m2.jwtSigner().kid, m1.jwtSigner().kid);
    // written to the datastore from then on
    clock.set(T0 + 13 * HOUR);
    await m2.tick();
    assert.ok((await ds.getCaJournal(journalNameFor(authorityIdOf(m2.x509Ca())))) !== null);
  });

  it('under an upstream authority publishes the upstream root and serves [leaf, intermediate]', async () => {
    const clock = new FakeClock(T0);
    const [upRoot] = createCaCertificate({ trustDomain: TrustDomain.parse('upstream.example'), key: RSA2048, ttlMs: 48 * HOUR, now: clock.now() });
    assert.ok(upRoot);
    const m = new CaManager({
      ca: { trustDomain: 'example.org' },
      keyManager: new MemoryKeyManager(),
      clock,
      upstream: { certChain: [upRoot], privateKey: RSA2048.privateKey, roots: [upRoot] },
    });
    await m.start();
    assert.deepEqual(m.bundle().x509Authorities.map(der), [der(upRoot)]);
    const svid = m.signX509Svid({ publicKey: P384.publicKey, spiffeId: web });
    assert.equal(svid.certChain.length, 2);
    assert.deepEqual(svid.certChain[1], m.x509Ca().certificate);
    const r = opensslVerify(svid.certChain[0] as Uint8Array, m.bundle().x509Authorities, { intermediates: svid.certChain.slice(1), atTime: clock.now() });
    assert.ok(r.ok, r.output);
    assert.ok(!opensslVerify(svid.certChain[0] as Uint8Array, m.bundle().x509Authorities, { atTime: clock.now() }).ok);
  });

  it('refuses to sign before it has started', () => {
    const m = new CaManager({ ca: { trustDomain: td }, keyManager: new MemoryKeyManager(), clock: new FakeClock(T0) });
    assert.throws(
      () => m.x509Ca(),
      (e: unknown) => isZtwimError(e, 'ERR_FAILED_PRECONDITION'),
    );
    assert.throws(
      () => m.jwtSigner(),
      (e: unknown) => isZtwimError(e, 'ERR_FAILED_PRECONDITION'),
    );
  });
});
