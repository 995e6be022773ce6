// The per-call agent check and the datastore's node cache (DataStore.getCachedAttestedNode,
// optional): an active agent's calls are answered from the cache without a database read, every
// other outcome is decided on a fresh read, and a datastore without the cache decides the same
// from plain reads. authz.test.ts covers the decisions themselves.
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { Code, ConnectError, createContextValues } from '@connectrpc/connect';
import { unixSeconds } from '@ztwim/core';
import { PermissionDeniedDetails_Reason, permissionDeniedReasonOf } from '@ztwim/proto';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { createCaCertificate, X509Ca } from '../ca/x509-ca.ts';
import type { DataStore } from '../datastore/datastore.ts';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import { authorizationInterceptor } from './authz.ts';
import { transportKey } from './caller.ts';

const TD = TrustDomain.parse('example.org');
const METHOD = 'spire.api.server.svid.v1.SVID/BatchNewX509SVID';

/** The store with its getAttestedNode reads counted, and with or without the node cache. */
function observed(ds: DataStore, withCache: boolean): { store: DataStore; reads: () => number } {
  let reads = 0;
  const store = new Proxy(ds, {
    get(target, prop) {
      if (prop === 'getCachedAttestedNode' && !withCache) return undefined;
      if (prop === 'getAttestedNode') {
        return (id: string) => {
          reads++;
          return target.getAttestedNode(id);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store, reads: () => reads };
}

async function withAgentCheck(
  withCache: boolean,
  fn: (t: {
    ds: DataStore;
    clock: FakeClock;
    reads: () => number;
    svid: (id: string) => { chain: Uint8Array[]; serial: string; expiresAt: number };
    call: (chain: readonly Uint8Array[]) => Promise<void>;
  }) => Promise<void>,
): Promise<void> {
  await withTempSqliteStore(async (ds) => {
    const clock = new FakeClock(Date.now());
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ca = new X509Ca({
      trustDomain: TD,
      key,
      chain: createCaCertificate({ trustDomain: TD, key, ttlMs: 24 * 3600_000, now: clock.now() }),
      clock,
      x509SvidTtlMs: 3600_000,
    });
    const svid = (id: string) => {
      const r = ca.signX509Svid({ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, spiffeId: SpiffeId.parse(id) });
      return { chain: r.certChain, serial: r.serial.toString(10), expiresAt: unixSeconds(r.notAfter) };
    };
    const { store, reads } = observed(ds, withCache);
    const interceptor = authorizationInterceptor({
      dataStore: store,
      clock,
      adminIds: [],
      verifyPeer: (c) => SpiffeId.parse(/URI:(spiffe:\/\/\S+?)(?:,|$)/.exec(new X509Certificate(c[0] as Uint8Array).subjectAltName ?? '')?.[1] ?? ''),
      isAgentPath: (id) => id.path.startsWith('/spire/agent/'),
    });
    const call = async (chain: readonly Uint8Array[]): Promise<void> => {
      const [service, name] = METHOD.split('/') as [string, string];
      const req = {
        service: { typeName: service },
        method: { name },
        contextValues: createContextValues().set(transportKey, { kind: 'tls', peerChain: chain, remoteAddress: '10.0.0.7:4000' }),
      };
      const run = interceptor((async () => ({ message: {} })) as never) as unknown as (r: typeof req) => Promise<unknown>;
      await run(req);
    };
    await fn({ ds, clock, reads, svid, call });
  });
}

async function deniedFor(p: Promise<unknown>, reason: PermissionDeniedDetails_Reason): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied && permissionDeniedReasonOf(e) === reason);
}

/** The decisions every store must give: active accepted, renewed promoted, old refused, expired refused. */
async function decisions(t: Parameters<Parameters<typeof withAgentCheck>[1]>[0]): Promise<void> {
  const id = 'spiffe://example.org/spire/agent/x/a';
  const first = t.svid(id);
  await t.ds.createAttestedNode({ spiffeId: id, attestationType: 'x', serialNumber: first.serial, expiresAt: first.expiresAt, canReattest: false });
  await t.call(first.chain);
  await t.call(first.chain);
  const renewed = t.svid(id);
  await t.ds.updateAttestedNode(id, { newSerialNumber: renewed.serial, newExpiresAt: renewed.expiresAt });
  await t.call(renewed.chain);
  assert.equal((await t.ds.getAttestedNode(id))?.serialNumber, renewed.serial);
  await deniedFor(t.call(first.chain), PermissionDeniedDetails_Reason.AGENT_NOT_ACTIVE);
  await t.call(renewed.chain);
  t.clock.set((renewed.expiresAt + 1) * 1000);
  await deniedFor(t.call(renewed.chain), PermissionDeniedDetails_Reason.AGENT_EXPIRED);
}

describe('authorization: agent check and the node cache', () => {
  it('a datastore without the node cache gives the same decisions from plain reads', async () => {
    await withAgentCheck(false, async (t) => {
      await decisions(t);
    });
  });

  it('with the cache the same decisions, and an active agent is answered without a database read', async () => {
    await withAgentCheck(true, async (t) => {
      await decisions(t);
      const id = 'spiffe://example.org/spire/agent/x/b';
      const s = t.svid(id);
      await t.ds.createAttestedNode({ spiffeId: id, attestationType: 'x', serialNumber: s.serial, expiresAt: s.expiresAt, canReattest: false });
      await t.call(s.chain);
      const before = t.reads();
      for (let i = 0; i < 5; i++) await t.call(s.chain);
      assert.equal(t.reads(), before, 'calls of an active agent read the node from the cache');
      // A refusal is never taken from the cache: the stale SVID is decided on a fresh read.
      const stale = t.svid(id);
      await deniedFor(t.call(stale.chain), PermissionDeniedDetails_Reason.AGENT_NOT_ACTIVE);
      assert.equal(t.reads(), before + 1);
    });
  });
});
