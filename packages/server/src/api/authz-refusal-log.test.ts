// As SPIRE's agent check (spire-api-wire.md §2.5): a refused agent gets only the generic denial
// and a reason code; the server log says which agent, from where, for which method, and why
// (with both serials when the SVID is not the active one). authz.test.ts covers the decisions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, unixSeconds } from '@ztwim/core';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import { agentCheckFixture } from './authz-agent.test-util.ts';

const METHOD = 'spire.api.server.entry.v1.Entry/GetAuthorizedEntries';

describe('authorization: refused agents are logged with the reason', () => {
  it('not attested, banned, expired and not-active agents each log one warning naming the agent, address, method and cause', async () => {
    await withTempSqliteStore(async (ds) => {
      const lines: Array<Record<string, unknown>> = [];
      const log = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
      const { clock, svid, call } = agentCheckFixture(ds, METHOD, log);
      const warned = async (chain: readonly Uint8Array[]): Promise<Record<string, unknown>> => {
        lines.length = 0;
        await assert.rejects(call(chain));
        assert.equal(lines.length, 1, JSON.stringify(lines));
        const { time: _time, ...rest } = lines[0] as Record<string, unknown>;
        return rest;
      };
      const where = (id: string) => ({ level: 'warn', agent_id: id, caller_addr: '10.0.0.7:4000', method: METHOD });

      const unknown = 'spiffe://example.org/spire/agent/x/unknown';
      assert.deepEqual(await warned(svid(unknown).chain), { ...where(unknown), msg: 'Agent is not attested' });

      const banned = 'spiffe://example.org/spire/agent/x/banned';
      const b = svid(banned);
      await ds.createAttestedNode({ spiffeId: banned, attestationType: 'x', serialNumber: b.serial, expiresAt: b.expiresAt, canReattest: false });
      await ds.banAttestedNode(banned);
      assert.deepEqual(await warned(b.chain), { ...where(banned), msg: 'Agent is banned' });

      const stale = 'spiffe://example.org/spire/agent/x/stale';
      const current = svid(stale);
      const old = svid(stale);
      await ds.createAttestedNode({ spiffeId: stale, attestationType: 'x', serialNumber: current.serial, expiresAt: current.expiresAt, canReattest: false });
      assert.deepEqual(await warned(old.chain), {
        ...where(stale),
        svid_serial_number: old.serial,
        serial_number: current.serial,
        msg: 'Agent SVID is not active',
      });

      const expired = 'spiffe://example.org/spire/agent/x/expired';
      const e = svid(expired);
      await ds.createAttestedNode({
        spiffeId: expired,
        attestationType: 'x',
        serialNumber: e.serial,
        expiresAt: unixSeconds(clock.now()) - 1,
        canReattest: false,
      });
      assert.deepEqual(await warned(e.chain), { ...where(expired), msg: 'Agent SVID is expired' });
    });
  });
});
