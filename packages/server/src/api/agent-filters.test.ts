// The Count/ListAgents filters (spire-api-wire.md §1.2). by_expires_before uses Go's layout
// `2006-01-02 15:04:05 -0700 -07`. SPIRE's CLI checks that layout before sending (a zone name in
// the last field is refused there: "cannot parse "CEST" as "-07"", seen with v1.13.0), but the
// server gets the string as any API client sends it. ztwim's server takes the instant from the
// numeric offset and does not read the last field: with zone names that JavaScript's Date cannot
// parse (CEST, IST), only that offset can give the counts below.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code } from '@connectrpc/connect';
import { SelectorMatch_MatchBehavior, type CountAgentsRequest } from '@ztwim/proto';
import { wireError, withAgentService } from './agent-service.test-util.ts';

describe('Agent API: Count/ListAgents filters', () => {
  it('by_expires_before takes the instant from the numeric offset whatever the last field holds', async () => {
    await withAgentService({}, async ({ svc, ds }) => {
      // Expiring at 2026-12-07 08:00:00 UTC (1796630400) and one second later.
      await ds.createAttestedNode({ spiffeId: 'spiffe://example.org/spire/agent/a', attestationType: 't', serialNumber: '1', expiresAt: 1_796_630_400 });
      await ds.createAttestedNode({ spiffeId: 'spiffe://example.org/spire/agent/b', attestationType: 't', serialNumber: '1', expiresAt: 1_796_630_401 });
      const before = async (byExpiresBefore: string): Promise<unknown> =>
        (await svc.countAgents!({ filter: { byAttestationType: '', byExpiresBefore } } as CountAgentsRequest, {} as never)).count;
      assert.equal(await before('2026-12-07 10:00:01 +0200 CEST'), 1);
      assert.equal(await before('2026-12-07 10:00:02 +0200 CEST'), 2);
      assert.equal(await before('2026-12-07 13:30:01 +0530 IST'), 1);
      assert.equal(await before('2026-12-07 13:29:01 +0530 IST'), 0);
      assert.equal(await before('2026-12-07 03:00:02 -0500 EST'), 2);
    });
  });

  it('a selector filter with no selectors is InvalidArgument "malformed selectors filter"', async () => {
    await withAgentService({}, async ({ svc }) => {
      const filter = { byAttestationType: '', byExpiresBefore: '', bySelectorMatch: { selectors: [], match: SelectorMatch_MatchBehavior.MATCH_EXACT } };
      for (const call of [svc.countAgents!, svc.listAgents!])
        await assert.rejects(Promise.resolve(call({ filter, pageSize: 0, pageToken: '' } as never, {} as never)), (e: unknown) => {
          const ce = wireError(e);
          assert.equal(ce.code, Code.InvalidArgument);
          assert.equal(ce.rawMessage, 'malformed selectors filter: empty selector set');
          return true;
        });
    });
  });
});
