// CreateJoinToken's agent_id (spire-api-wire.md §1.2; spiffe/spire pkg/server/api/agent/v1
// service.go checks it with api.TrustDomainWorkloadIDFromProto): the alias entry it creates gets
// that ID as its SPIFFE ID, so it must be a workload ID of the trust domain. The trust domain's
// own ID and the reserved /spire namespace (the server's ID, agent IDs) are refused before the
// token is stored, as the Entry API refuses such entries.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code } from '@connectrpc/connect';
import { wireError, withAgentService } from './agent-service.test-util.ts';

describe('Agent API: CreateJoinToken agent_id', () => {
  it('the trust domain ID or a /spire ID is InvalidArgument (SPIRE texts); no token, no entry', async () => {
    await withAgentService({}, async ({ svc, ds }) => {
      const cases: Array<[string, string]> = [
        ['', 'path is empty'],
        ['/spire', 'path is in the reserved namespace'],
        ['/spire/server', 'path is in the reserved namespace'],
        ['/spire/agent/x', 'path is in the reserved namespace'],
      ];
      for (const [path, why] of cases) {
        await assert.rejects(
          Promise.resolve(svc.createJoinToken!({ ttl: 60, token: 'tok', agentId: { trustDomain: 'example.org', path } } as never, {} as never)),
          (e: unknown) => {
            const ce = wireError(e);
            assert.equal(ce.code, Code.InvalidArgument, path);
            assert.equal(ce.rawMessage, `invalid agent ID: "spiffe://example.org${path}" is not a workload in trust domain "example.org"; ${why}`);
            return true;
          },
        );
      }
      assert.equal(await ds.takeJoinToken('tok'), null);
      assert.equal((await ds.listEntries()).entries.length, 0);
      // Paths that only start like the reserved namespace are workloads.
      for (const path of ['/spirex', '/x/spire/agent'])
        await svc.createJoinToken!({ ttl: 60, token: `t${path.length}`, agentId: { trustDomain: 'example.org', path } } as never, {} as never);
      assert.deepEqual((await ds.listEntries()).entries.map((e) => e.spiffeId).sort(), ['spiffe://example.org/spirex', 'spiffe://example.org/x/spire/agent']);
    });
  });
});
