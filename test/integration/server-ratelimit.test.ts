// SPIRE's signing rate limit on ztwim's server (ratelimit { signing = true }, the default): one
// agent floods BatchNewX509SVID from 127.0.0.1 and is refused with ResourceExhausted once its per-IP
// bucket is empty and its deadline is nearer than its next token, while another agent on
// 127.0.0.2 keeps being served. The same flood against SPIRE v1.13.0:
// test/interop/server-ratelimit-vs-spire.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signingFlood } from '../interop/lib/signing-flood.ts';
import { startZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

const FLOOD_REFUSAL = 'rejecting request due to certificate signing rate limiting: rate: Wait(n=400) would exceed context deadline';

describe('ztwim server: SPIRE signing rate limit', () => {
  it('a signing flood from one IP is refused with ResourceExhausted while an agent on another IP keeps being served', async () => {
    const srv = await startZtwimAdminServer();
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

  it('ratelimit { signing = false }: the same flood is not refused', async () => {
    const srv = await startZtwimAdminServer({ extraServerConfig: '  ratelimit {\n    signing = false\n  }\n' });
    try {
      const r = await signingFlood(srv);
      assert.equal(r.flood.byCode['ResourceExhausted'], undefined, JSON.stringify(r.flood));
      assert.deepEqual(r.other.failed, []);
    } finally {
      await srv.stop();
    }
  });
});
