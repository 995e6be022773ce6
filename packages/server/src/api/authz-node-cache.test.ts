// The per-call agent check and the datastore's node cache (DataStore.getCachedAttestedNode,
// optional): an active agent's calls are answered from the cache without a database read, every
// other outcome is decided on a fresh read, and a datastore without the cache decides the same
// from plain reads. authz.test.ts covers the decisions themselves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { PermissionDeniedDetails_Reason, permissionDeniedReasonOf } from '@ztwim/proto';
import type { DataStore } from '../datastore/datastore.ts';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import { agentCheckFixture, type AgentCheckFixture } from './authz-agent.test-util.ts';

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

interface Check extends AgentCheckFixture {
  readonly ds: DataStore;
  /** getAttestedNode calls so far. */
  reads(): number;
}

async function withAgentCheck(withCache: boolean, fn: (t: Check) => Promise<void>): Promise<void> {
  await withTempSqliteStore(async (ds) => {
    const { store, reads } = observed(ds, withCache);
    await fn({ ...agentCheckFixture(store, METHOD), ds, reads });
  });
}

async function deniedFor(p: Promise<unknown>, reason: PermissionDeniedDetails_Reason): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied && permissionDeniedReasonOf(e) === reason);
}

/** The decisions every store must give: active accepted, renewed promoted, old refused, expired refused. */
async function decisions(t: Check): Promise<void> {
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
