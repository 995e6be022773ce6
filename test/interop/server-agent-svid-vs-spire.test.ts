// The agent-endpoint suite of test/integration/server-agent-svid.test.ts against the real SPIRE
// v1.13.0 server: it pins down what SPIRE answers (the generic "authorization denied for method
// …" with PermissionDeniedDetails; a TLS alert bad_certificate for untrusted or expired client
// certificates), which ztwim's server is checked against.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Code, createClient } from '@connectrpc/connect';
import { eventually } from '@ztwim/testkit';
import { AgentService, BundleService, createUnixGrpcTransport } from '@ztwim/proto';
import { ServerClient, attestAgent } from '../../packages/agent/src/client/server-client.ts';
import { agentEndpointSuite, statusOf } from './lib/agent-endpoint.ts';
import { startSpireAdminServer } from './lib/spire-admin.ts';
import { TrustDomain } from '@ztwim/spiffe';

/** SPIRE's TLS verification failure as a Node gRPC client sees it. */
function tlsBadCertificate(e: { code: Code; rawMessage: string; message: string }, rpc: string): void {
  assert.equal(e.code, Code.Internal, `${rpc}: ${e.message}`);
  assert.match(e.rawMessage, /alert bad certificate/, rpc);
}

agentEndpointSuite(
  {
    name: 'real SPIRE v1.13.0 server',
    trustDomain: 'example.org',
    start: () => startSpireAdminServer({ trustDomain: 'example.org' }),
    untrusted: tlsBadCertificate,
  },
  () => {
    it('an expired agent SVID: the TLS handshake fails (alert bad certificate)', async () => {
      const srv = await startSpireAdminServer({ trustDomain: 'example.org', extraServerConfig: '  agent_ttl = "2s"' });
      const admin = createUnixGrpcTransport(srv.socketPath);
      const clients: ServerClient[] = [];
      try {
        const roots = (await createClient(BundleService, admin).getBundle({})).x509Authorities.map((a) => a.asn1);
        const opts = { host: '127.0.0.1', port: srv.port, trustDomain: TrustDomain.parse('example.org'), roots };
        const token = await createClient(AgentService, admin).createJoinToken({ ttl: 600 });
        const boot = new ServerClient(opts);
        clients.push(boot);
        const creds = await attestAgent(boot, { type: 'join_token', token: token.value });
        // Real time (SPIRE's clock judges it): wait until the 2 s agent SVID has expired.
        await eventually('the agent SVID expired', () => Date.now() > creds.svid.expiresAt().getTime() + 1000, { timeoutMs: 15_000, intervalMs: 100 });
        const c = new ServerClient(opts, creds);
        clients.push(c);
        await assert.rejects(c.entry.getAuthorizedEntries({}), (e: unknown) => {
          tlsBadCertificate(statusOf(e) as never, 'spire.api.server.entry.v1.Entry/GetAuthorizedEntries');
          return true;
        });
      } finally {
        for (const c of clients) c.close();
        admin.close();
        await srv.stop();
      }
    });
  },
);
