// The signing flood of test/integration/server-ratelimit.test.ts against a real SPIRE v1.13.0
// server with its default ratelimit (attestation and signing on): the flooding agent is refused
// with the same code and message as on ztwim's server, the agent on another IP is served.
import { describe, it } from 'node:test';
import { assertFloodRefusedLikeSpire, signingFlood } from './lib/signing-flood.ts';
import { startSpireAdminServer } from './lib/spire-admin.ts';

describe('SPIRE v1.13.0 server: signing rate limit, as ztwim implements it', () => {
  it('a signing flood from one IP is refused with ResourceExhausted while an agent on another IP keeps being served', async () => {
    const srv = await startSpireAdminServer();
    try {
      const r = await signingFlood(srv);
      assertFloodRefusedLikeSpire(r);
    } finally {
      await srv.stop();
    }
  });
});
