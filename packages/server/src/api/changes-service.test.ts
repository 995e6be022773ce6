import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UnaryRequest, UnaryResponse } from '@connectrpc/connect';
import { AdminWrites, adminWritesInterceptor, changesService, isWatchedWrite } from './changes-service.ts';

const call = async (writes: AdminWrites, service: string, method: string, fail = false): Promise<void> => {
  const next = async (): Promise<UnaryResponse> => {
    if (fail) throw new Error('refused');
    return {} as UnaryResponse;
  };
  const req = { service: { typeName: service }, method: { name: method } } as unknown as UnaryRequest;
  await adminWritesInterceptor(writes)(next)(req).catch(() => undefined);
};

test('isWatchedWrite: writes to entries, agents, bundles and federation; never reads or SVID signing', () => {
  assert.equal(isWatchedWrite('spire.api.server.entry.v1.Entry', 'BatchUpdateEntry'), true);
  assert.equal(isWatchedWrite('spire.api.server.agent.v1.Agent', 'BanAgent'), true);
  assert.equal(isWatchedWrite('spire.api.server.agent.v1.Agent', 'DeleteAgent'), true);
  assert.equal(isWatchedWrite('spire.api.server.bundle.v1.Bundle', 'BatchSetFederatedBundle'), true);
  assert.equal(isWatchedWrite('spire.api.server.trustdomain.v1.TrustDomain', 'BatchCreateFederationRelationship'), true);
  assert.equal(isWatchedWrite('spire.api.server.entry.v1.Entry', 'ListEntries'), false);
  assert.equal(isWatchedWrite('spire.api.server.entry.v1.Entry', 'SyncAuthorizedEntries'), false);
  assert.equal(isWatchedWrite('spire.api.server.bundle.v1.Bundle', 'GetBundle'), false);
  assert.equal(isWatchedWrite('spire.api.server.agent.v1.Agent', 'CountAgents'), false);
  assert.equal(isWatchedWrite('spire.api.server.svid.v1.SVID', 'BatchNewX509SVID'), false);
});

test('the revision moves once per write that succeeded, and GetRevision reads it with the start time', async () => {
  const writes = new AdminWrites();
  const svc = changesService({ writes, startedAtMs: 1_700_000_000_123 });
  const read = async (): Promise<{ writes: bigint; startedAt: bigint }> => {
    const r = (await svc.getRevision?.({} as never, {} as never)) as { writes: bigint; startedAt: bigint };
    return { writes: r.writes, startedAt: r.startedAt };
  };
  assert.deepEqual(await read(), { writes: 0n, startedAt: 1_700_000_000_123n });
  await call(writes, 'spire.api.server.entry.v1.Entry', 'BatchUpdateEntry');
  await call(writes, 'spire.api.server.entry.v1.Entry', 'ListEntries');
  await call(writes, 'spire.api.server.agent.v1.Agent', 'BanAgent', true);
  assert.equal((await read()).writes, 1n);
  await call(writes, 'spire.api.server.agent.v1.Agent', 'BanAgent');
  await call(writes, 'spire.api.server.trustdomain.v1.TrustDomain', 'BatchDeleteFederationRelationship');
  assert.equal((await read()).writes, 3n);
});
