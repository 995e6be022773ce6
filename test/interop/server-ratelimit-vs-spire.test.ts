// The signing flood of test/integration/server-ratelimit.test.ts against a real SPIRE v1.13.0
// server with its default ratelimit (attestation and signing on): the flooding agent is refused
// with the same code and message as on ztwim's server, the agent on another IP is served.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signingFlood } from './lib/signing-flood.ts';
import { startSpireAdminServer } from './lib/spire-admin.ts';

const FLOOD_REFUSAL = 'rejecting request due to certificate signing rate limiting: rate: Wait(n=400) would exceed context deadline';

describe('SPIRE v1.13.0 server: signing rate limit, as ztwim implements it', () => {
  it('a signing flood from one IP is refused with ResourceExhausted while an agent on another IP keeps being served', async () => {
    const srv = await startSpireAdminServer();
    try {
      const r = await signingFlood(srv);
      assert.ok((r.flood.byCode['ResourceExhausted'] ?? 0) > 0, `flood refused: ${JSON.stringify(r.flood)}`);
      assert.ok(r.flood.ok >= 1, `the burst is served: ${JSON.stringify(r.flood)}`);
      assert.deepEqual(r.flood.messages, [FLOOD_REFUSAL]);
      for (const c of Object.keys(r.flood.byCode)) assert.ok(c === 'ResourceExhausted' || c === 'DeadlineExceeded', `unexpected ${c}: ${JSON.stringify(r.flood)}`);
      assert.deepEqual(r.other.failed, []);
      assert.ok(r.other.ok > 0, 'the other agent was served during the flood');
      assert.deepEqual(r.overBurst, { code: 'ResourceExhausted', message: 'rejecting request due to certificate signing rate limiting: rate (501) exceeds burst size (500)' });
    } finally {
      await srv.stop();
    }
  });
});
