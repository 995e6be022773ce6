// SPIRE's signing rate limit on ztwim's server (ratelimit { signing = true }, the default): one
// agent floods BatchNewX509SVID from 127.0.0.1 and is refused with ResourceExhausted once its per-IP
// bucket is empty and its deadline is nearer than its next token, while another agent on
// 127.0.0.2 keeps being served. The same flood against SPIRE v1.13.0:
// test/interop/server-ratelimit-vs-spire.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertFloodRefusedLikeSpire, signingFlood } from '../interop/lib/signing-flood.ts';
import { startZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

describe('ztwim server: SPIRE signing rate limit', () => {
  it('a signing flood from one IP is refused with ResourceExhausted while an agent on another IP keeps being served', async () => {
    const srv = await startZtwimAdminServer();
    try {
      const r = await signingFlood(srv);
      assertFloodRefusedLikeSpire(r);
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
