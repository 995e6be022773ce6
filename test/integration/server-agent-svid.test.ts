// ztwim's agent endpoint facing bad agent credentials (the suite in lib/agent-endpoint.ts; the
// same suite runs against the real SPIRE server in test/interop/server-agent-svid-vs-spire.test.ts).
// Answers are SPIRE's: PermissionDenied "authorization denied for method /<method>" with
// PermissionDeniedDetails for banned, evicted and superseded agents. Where SPIRE fails the TLS
// handshake (untrusted or expired client certificate), Node cannot fail a server handshake on
// a check of its own, so ztwim answers every RPC with Unauthenticated and the reason instead.
// The expired case uses an injected clock: the server sees the SVID expire while the TLS client
// (real time) still trusts the server.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Code } from '@connectrpc/connect';
import { FakeClock } from '@ztwim/testkit';
import { agentEndpointSuite } from '../interop/lib/agent-endpoint.ts';
import { startZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

const AGENT_TTL_MS = 10 * 60_000;
const clock = new FakeClock(Date.now());

agentEndpointSuite(
  {
    name: 'ztwim server',
    trustDomain: 'example.org',
    clock,
    // The rate limiter runs on the injected clock, which only moves when the suite moves it, so
    // the 1/s per-IP attestation bucket would never refill between this suite's attestations
    // from 127.0.0.1: attestation is not limited here (SPIRE's run of the suite keeps its default
    // and waits a second per attestation).
    start: () =>
      startZtwimAdminServer({
        trustDomain: 'example.org',
        clock,
        extraServerConfig: `  agent_ttl = "${AGENT_TTL_MS / 1000}s"\n  ratelimit {\n    attestation = false\n  }\n`,
      }),
    untrusted: (e, rpc) => {
      assert.equal(e.code, Code.Unauthenticated, `${rpc}: ${e.message}`);
      assert.match(e.rawMessage, /^client certificate is not trusted: .+/, rpc);
    },
  },
  (h) => {
    // Last: moves the injected clock past every SVID minted so far.
    it('an expired agent SVID (right CA, notAfter in the past): Unauthenticated "certificate has expired"', async () => {
      const creds = await h.attest();
      await h.use(creds);
      clock.advance(AGENT_TTL_MS + 60_000);
      assert.ok(clock.nowMs() > creds.svid.expiresAt().getTime());
      await h.allFail(creds, (e, rpc) => {
        assert.equal(e.code, Code.Unauthenticated, `${rpc}: ${e.message}`);
        assert.match(e.rawMessage, /^client certificate is not trusted: .*certificate has expired or is not yet valid: current time .* is after /);
      });
      await h.goodAgentWorks();
    });
  },
);
