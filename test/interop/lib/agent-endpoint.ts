// The agent endpoint (TCP/TLS) of a server facing agents with bad credentials, as a suite that
// runs against ztwim's server and the real SPIRE server alike: no certificate, a banned agent,
// an evicted agent, a superseded SVID, SVIDs from foreign or rogue CAs. Every agent-only RPC
// must fail with the expected code and message, and a good agent must still be served after.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { systemClock, type Clock } from '@ztwim/core';
import { concatDer, SpiffeId, TrustDomain, X509Svid } from '@ztwim/spiffe';
import {
  AgentService,
  BundleService,
  EntryService,
  HealthCheckResponse_ServingStatus,
  HealthService,
  PermissionDeniedDetails_Reason,
  createUnixGrpcTransport,
  permissionDeniedReasonOf,
  type GrpcClientTransport,
} from '@ztwim/proto';
import { createCaCertificate, X509Ca } from '@ztwim/server';
import { ServerClient, attestAgent, renewAgent, type AgentCredentials } from '../../../packages/agent/src/client/server-client.ts';
import { createCsr, generateEcKey } from '../../../packages/agent/src/client/csr.ts';
import { eventually } from '@ztwim/testkit';

export type { AgentCredentials };

/** The server under test: admin socket, agent port, and how to stop it. */
export interface EndpointServer {
  readonly socketPath: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface AgentEndpointSuiteOptions {
  readonly name: string;
  readonly trustDomain: string;
  readonly start: () => Promise<EndpointServer>;
  /**
   * What a client presenting a certificate the server does not trust sees. SPIRE fails the TLS
   * handshake (alert bad_certificate); ztwim answers Unauthenticated with the reason.
   */
  readonly untrusted: (e: ConnectError, rpc: string) => void;
  /** Clock for minting foreign SVIDs (the server's, when injected). */
  readonly clock?: Clock;
}

/** The gRPC status under the agent client's typed error (its ServerClient translates ConnectErrors). */
export function statusOf(e: unknown): unknown {
  return e instanceof Error && e.cause instanceof ConnectError ? e.cause : e;
}

/** An X509-SVID from a CA of its own (another trust domain, or a rogue CA claiming a trusted one). */
export function foreignSvid(caTrustDomain: string, spiffeId: string, clock: Clock = systemClock): AgentCredentials {
  const caKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const td = TrustDomain.parse(caTrustDomain);
  const chain = createCaCertificate({ trustDomain: td, key: caKey, ttlMs: 24 * 3600_000, now: clock.now() });
  const ca = new X509Ca({ trustDomain: td, key: caKey, chain, clock, x509SvidTtlMs: 3600_000 });
  const leafKey = generateEcKey();
  const svid = ca.signX509Svid({ publicKey: leafKey.publicKey, spiffeId: SpiffeId.parse(spiffeId) });
  return {
    svid: X509Svid.parseRaw(concatDer(svid.certChain), new Uint8Array(leafKey.privateKey.export({ type: 'pkcs8', format: 'der' }))),
    reattestable: false,
  };
}

/** Handles for tests that add cases of their own (e.g. an expired SVID with an injected clock). */
export interface AgentEndpointHarness {
  attest(): Promise<AgentCredentials>;
  /** One authorised call with these credentials, which must succeed. */
  use(creds: AgentCredentials): Promise<void>;
  client(creds?: AgentCredentials): Promise<ServerClient>;
  /** Every agent-only RPC fails: `expect` checks each error. */
  allFail(creds: AgentCredentials | undefined, expect: (e: ConnectError, rpc: string) => void): Promise<void>;
  /** A freshly attested agent renews, syncs its entries and gets an SVID; the admin API answers. */
  goodAgentWorks(): Promise<void>;
}

/** `authorization denied for method /<full method>` + PermissionDeniedDetails, as SPIRE answers. */
export function deniedWith(reason: PermissionDeniedDetails_Reason | undefined): (e: ConnectError, rpc: string) => void {
  return (e, rpc) => {
    assert.equal(e.code, Code.PermissionDenied, `${rpc}: ${e.message}`);
    assert.equal(e.rawMessage, `authorization denied for method /${rpc}`);
    assert.equal(permissionDeniedReasonOf(e), reason, `${rpc}: PermissionDeniedDetails`);
  };
}

export function agentEndpointSuite(opts: AgentEndpointSuiteOptions, extra?: (h: AgentEndpointHarness) => void): void {
  const TD = opts.trustDomain;
  describe(`agent endpoint (${opts.name}): bad agent credentials get clear errors and the server keeps serving`, () => {
    let srv: EndpointServer;
    let admin: GrpcClientTransport;
    let roots: Uint8Array[] = [];
    const clients: ServerClient[] = [];
    let n = 0;

    before(async () => {
      srv = await opts.start();
      admin = createUnixGrpcTransport(srv.socketPath);
    });
    after(async () => {
      for (const c of clients) c.close();
      admin?.close();
      await srv?.stop();
    });

    const agentApi = () => createClient(AgentService, admin);
    const idOf = (s: string) => {
      const id = SpiffeId.parse(s);
      return { trustDomain: id.trustDomain.name, path: id.path };
    };

    async function client(creds?: AgentCredentials): Promise<ServerClient> {
      // The bundle as the admin API serves it now (the CA may have rotated).
      roots = (await createClient(BundleService, admin).getBundle({})).x509Authorities.map((a) => a.asn1);
      const c = new ServerClient({ host: '127.0.0.1', port: srv.port, trustDomain: TrustDomain.parse(TD), roots }, creds);
      clients.push(c);
      return c;
    }

    async function attest(): Promise<AgentCredentials> {
      const token = await agentApi().createJoinToken({ ttl: 600 });
      const c = await client();
      try {
        return await attestAgent(c, { type: 'join_token', token: token.value });
      } finally {
        c.close();
      }
    }

    /** The agent-only RPCs (and GetFederatedBundle, which agents may call), each run to completion. */
    function agentCalls(c: ServerClient): Array<[string, () => Promise<unknown>]> {
      const { privateKey, publicKey } = generateEcKey();
      const csr = createCsr(privateKey, publicKey);
      return [
        ['spire.api.server.agent.v1.Agent/RenewAgent', () => c.agent.renewAgent({ params: { csr } })],
        ['spire.api.server.entry.v1.Entry/GetAuthorizedEntries', () => c.entry.getAuthorizedEntries({})],
        [
          'spire.api.server.entry.v1.Entry/SyncAuthorizedEntries',
          async () => {
            async function* one() {
              yield {};
            }
            for await (const _ of c.entry.syncAuthorizedEntries(one())) void _;
          },
        ],
        ['spire.api.server.svid.v1.SVID/BatchNewX509SVID', () => c.svid.batchNewX509SVID({ params: [{ entryId: 'any', csr }] })],
        ['spire.api.server.svid.v1.SVID/NewJWTSVID', () => c.svid.newJWTSVID({ entryId: 'any', audience: ['a'] })],
        ['spire.api.server.bundle.v1.Bundle/GetFederatedBundle', () => c.bundle.getFederatedBundle({ trustDomain: 'other.org' })],
      ];
    }

    /** One authorised call with these credentials (the agent is accepted). */
    async function use(creds: AgentCredentials): Promise<void> {
      const c = await client(creds);
      await c.entry.getAuthorizedEntries({});
      c.close();
    }

    async function allFail(creds: AgentCredentials | undefined, expect: (e: ConnectError, rpc: string) => void): Promise<void> {
      const c = await client(creds);
      for (const [rpc, call] of agentCalls(c)) {
        await assert.rejects(call(), (err: unknown) => {
          const e = statusOf(err);
          assert.ok(e instanceof ConnectError, `${rpc}: ${String(err)}`);
          expect(e, rpc);
          return true;
        });
      }
      c.close();
    }

    async function goodAgentWorks(): Promise<void> {
      const creds = await attest();
      const created = await createClient(EntryService, admin).batchCreateEntry({
        entries: [
          { spiffeId: { trustDomain: TD, path: `/workload/${n++}` }, parentId: idOf(creds.svid.id.toString()), selectors: [{ type: 'unix', value: 'uid:1' }] },
        ],
      });
      const entryId = created.results[0]?.entry?.id ?? '';
      assert.notEqual(entryId, '', created.results[0]?.status?.message);
      const c = await client(creds);
      // SPIRE serves authorised entries from a cache refreshed every few seconds: poll with a deadline.
      const authorized = await eventually(
        'an authorised entry',
        async () => {
          const a = await c.entry.getAuthorizedEntries({});
          return a.entries.length > 0 ? a : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      assert.deepEqual(
        authorized.entries.map((e) => e.id),
        [entryId],
      );
      const { privateKey, publicKey } = generateEcKey();
      const minted = await c.svid.batchNewX509SVID({ params: [{ entryId, csr: createCsr(privateKey, publicKey) }] });
      assert.equal(minted.results[0]?.status?.code, 0, minted.results[0]?.status?.message);
      assert.ok((minted.results[0]?.svid?.certChain.length ?? 0) > 0);
      const renewed = await renewAgent(c, false);
      assert.ok(renewed.svid.id.equals(creds.svid.id));
      c.close();
      const health = await createClient(HealthService, admin).check({});
      assert.equal(health.status, HealthCheckResponse_ServingStatus.SERVING);
    }

    it('no client certificate: PermissionDenied "authorization denied for method …"', async () => {
      await allFail(undefined, deniedWith(undefined));
      await goodAgentWorks();
    });

    it('a banned agent: PermissionDenied + AGENT_BANNED', async () => {
      const creds = await attest();
      // Used first, so a server that remembers the accepted agent must forget it on the ban.
      await use(creds);
      await agentApi().banAgent({ id: idOf(creds.svid.id.toString()) });
      await allFail(creds, deniedWith(PermissionDeniedDetails_Reason.AGENT_BANNED));
      await goodAgentWorks();
    });

    it('an evicted agent with a still valid SVID: PermissionDenied + AGENT_NOT_ATTESTED', async () => {
      const creds = await attest();
      await use(creds);
      await agentApi().deleteAgent({ id: idOf(creds.svid.id.toString()) });
      await allFail(creds, deniedWith(PermissionDeniedDetails_Reason.AGENT_NOT_ATTESTED));
      await goodAgentWorks();
    });

    it('a superseded SVID after renewal: PermissionDenied + AGENT_NOT_ACTIVE; before the new one is used, both work', async () => {
      const old = await attest();
      const c = await client(old);
      const renewed = await renewAgent(c, false);
      c.close();
      // Until the new SVID is used, the old one is still the current one.
      await use(old);
      // Using the new SVID once makes it current; the old one is then refused.
      await use(renewed);
      await allFail(old, deniedWith(PermissionDeniedDetails_Reason.AGENT_NOT_ACTIVE));
      await goodAgentWorks();
    });

    it('foreign SVIDs (another trust domain, federated or not; a rogue CA claiming ours): refused as untrusted', async () => {
      const other = foreignSvid('other.org', 'spiffe://other.org/spire/agent/join_token/x', opts.clock);
      await allFail(other, opts.untrusted);
      // Federating with other.org makes its bundle known, not its agents.
      const set = await createClient(BundleService, admin).batchSetFederatedBundle({
        bundle: [{ trustDomain: 'other.org', x509Authorities: [{ asn1: other.svid.certificates[other.svid.certificates.length - 1] as Uint8Array }] }],
      });
      assert.equal(set.results[0]?.status?.code, 0, set.results[0]?.status?.message);
      await allFail(other, opts.untrusted);
      // A rogue CA minting an SVID with the ID of an attested agent of ours.
      const victim = await attest();
      const rogue = foreignSvid(TD, victim.svid.id.toString(), opts.clock);
      await allFail(rogue, opts.untrusted);
      // Even methods anyone may call are refused with a bad certificate.
      const c = await client(rogue);
      await assert.rejects(c.bundle.getBundle({}), (err: unknown) => {
        const e = statusOf(err);
        assert.ok(e instanceof ConnectError);
        opts.untrusted(e, 'spire.api.server.bundle.v1.Bundle/GetBundle');
        return true;
      });
      c.close();
      await goodAgentWorks();
    });

    extra?.({ attest, use, client, allFail, goodAgentWorks });
  });
}
