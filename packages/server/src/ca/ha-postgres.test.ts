// Three servers' CAs on one PostgreSQL (docs/ha.md): each keeps its own CA key, JWT key and
// journal; every key is in the one stored bundle before any server signs with it, so through two
// full rotations every SVID any server issued verifies against the bundle every server serves
// (the stored one agents fetch) and trusts (its refreshed view), at every step.
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { cryptoRandom, silentLogger } from '@ztwim/core';
import { JwtBundle, parseAndValidateJwtSvid, SpiffeId, TrustDomain, verifyX509Svid, X509Bundle } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { BundlePublisher } from '../bundle/publisher.ts';
import { SharedAuthorities } from '../bundle/shared-authorities.ts';
import type { Bundle } from '../datastore/datastore.ts';
import { freshPgSchema, startHaPg } from '../datastore/postgres/pg-cluster.test-util.ts';
import { PostgresDataStore } from '../datastore/postgres/postgres-datastore.ts';
import { MemoryKeyManager } from '../keymanager/memory.ts';
import { Journal, journalNameFor } from './journal.ts';
import { authorityIdOf, CaManager } from './manager.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.parse('2026-03-01T00:00:00Z');
const TD = TrustDomain.parse('example.org');
const WORKLOAD = SpiffeId.parse('spiffe://example.org/workload');
const CA_TTL = 2 * HOUR;
const STEP = 30_000;
/** Each server re-reads the stored bundle this often (staggered). */
const REFRESH = 60_000;
/** Longer than REFRESH: every server has re-read the bundle before a prepared key signs. */
const ACTIVATION_DELAY = 3 * MIN;
const { publicKey: WORKLOAD_KEY } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

interface Server {
  readonly km: MemoryKeyManager;
  readonly ds: PostgresDataStore;
  ca: CaManager;
  readonly trusted: SharedAuthorities;
}

interface Issued {
  readonly by: number;
  readonly chain: Uint8Array[];
  readonly token: string;
  readonly notAfter: number;
}

const jwtBundleOf = (b: Bundle): JwtBundle =>
  JwtBundle.fromAuthorities(
    TD,
    new Map(b.jwtAuthorities.map((k) => [k.keyId, createPublicKey({ key: Buffer.from(k.publicKey), format: 'der', type: 'spki' }).export({ format: 'jwk' })])),
  );

describe('CA on three servers sharing one PostgreSQL', () => {
  let url = '';
  const drops: Array<() => Promise<void>> = [];
  const servers: Server[] = [];

  before(() => {
    url = startHaPg();
  });
  after(async () => {
    for (const s of servers) await s.ds.close();
    for (const d of drops) await d();
  });

  it('rotates twice with every SVID verifying against every server’s bundle at every step; each server keeps its own journal', async () => {
    const { connectionString, drop } = await freshPgSchema(url, 'ca');
    drops.push(drop);
    const clock = new FakeClock(T0);
    const makeCa = (km: MemoryKeyManager, ds: PostgresDataStore): CaManager => {
      const publisher = new BundlePublisher({ dataStore: ds, trustDomain: TD, clock });
      return new CaManager({
        ca: { trustDomain: 'example.org', caTtlMs: CA_TTL, x509SvidTtlMs: 10 * MIN, jwtSvidTtlMs: 5 * MIN },
        keyManager: km,
        clock,
        journal: new Journal({ store: ds }),
        publishBundle: (b) => publisher.publish(b),
        activationDelayMs: ACTIVATION_DELAY,
        logger: silentLogger(),
      });
    };
    for (let i = 0; i < 3; i++) {
      const km = new MemoryKeyManager();
      const ds = await PostgresDataStore.open({ connectionString, maxOpenConns: 4, clock, random: cryptoRandom });
      let ca: CaManager | undefined;
      const trusted = new SharedAuthorities({
        dataStore: ds,
        trustDomain: TD,
        clock,
        local: () => (ca === undefined ? [] : ca.bundle().x509Authorities),
        refreshMs: REFRESH,
      });
      ca = makeCa(km, ds);
      servers.push({ km, ds, ca, trusted });
      await ca.start();
    }
    for (const s of servers) await s.trusted.refresh();

    const live: Issued[] = [];
    const caCerts = new Set<string>();
    const x509Bundles = new WeakMap<readonly Uint8Array[], X509Bundle>();
    const x509BundleOf = (auths: readonly Uint8Array[]): X509Bundle => {
      let b = x509Bundles.get(auths);
      if (b === undefined) x509Bundles.set(auths, (b = X509Bundle.fromAuthorities(TD, auths)));
      return b;
    };
    // CAs activate at 0, 100 and 160 min (⅚ of each one's life after the previous preparation)
    const steps = Math.ceil((1.5 * CA_TTL) / STEP);
    for (let step = 0; step < steps; step++) {
      clock.advance(STEP);
      const now = clock.now();
      for (const [i, s] of servers.entries()) {
        await s.ca.tick();
        if ((step + i) % (REFRESH / STEP) === 0) await s.trusted.refresh();
        caCerts.add(Buffer.from(s.ca.x509Ca().certificate).toString('hex'));
        // every server issues an SVID every 90 s; workloads hold them until they expire
        if (step % 3 === 0) {
          const x = s.ca.signX509Svid({ publicKey: WORKLOAD_KEY, spiffeId: WORKLOAD });
          const j = await s.ca.signJwtSvid({ spiffeId: WORKLOAD, audience: ['rp'] });
          live.push({ by: i, chain: x.certChain, token: j.token, notAfter: Math.min(x.notAfter.getTime(), now.getTime() + 5 * MIN) });
        }
      }
      while (live.length > 0 && (live[0]?.notAfter ?? 0) <= now.getTime()) live.shift();
      for (const [j, s] of servers.entries()) {
        const stored = await s.ds.getBundle(TD.name);
        assert.ok(stored !== null);
        const served = X509Bundle.fromAuthorities(
          TD,
          stored.x509Authorities.map((a) => a.asn1),
        );
        const jwks = jwtBundleOf(stored);
        const trusted = x509BundleOf(s.trusted.x509Authorities());
        for (const svid of live) {
          const where = `step ${step} (${(step * STEP) / MIN} min): SVID of server ${svid.by} against server ${j}`;
          assert.doesNotThrow(() => verifyX509Svid(svid.chain, served, { now }), `${where}'s stored bundle`);
          assert.doesNotThrow(() => verifyX509Svid(svid.chain, trusted, { now }), `${where}'s trusted authorities`);
          await parseAndValidateJwtSvid(svid.token, jwks, ['rp'], { now, leewaySeconds: 0 }).catch((e: unknown) =>
            assert.fail(`${where}'s JWT keys: ${String(e)}`),
          );
        }
      }
    }
    // two rotations on each of the three servers: 3 CAs each, all different
    assert.equal(caCerts.size, 9);
    assert.ok(live.length > 0);

    // each server has its own journal, found again by the CA key in its key manager
    const names = servers.map((s) => journalNameFor(authorityIdOf(s.ca.x509Ca())));
    assert.equal(new Set(names).size, 3);
    for (const n of names) assert.ok((await servers[0]?.ds.getCaJournal(n)) !== null, n);
    for (const [i, s] of servers.entries()) {
      const restarted = makeCa(s.km, s.ds);
      await restarted.start();
      assert.deepEqual(restarted.x509Ca().certificate, s.ca.x509Ca().certificate, `server ${i} restarts with its own CA`);
      assert.equal(restarted.jwtSigner().kid, s.ca.jwtSigner().kid, `server ${i} restarts with its own JWT key`);
    }
  });
});
