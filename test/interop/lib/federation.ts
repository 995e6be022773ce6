// Federating two ztwim stacks through the TrustDomain API (https_spiffe, the other server's
// bundle as bootstrap bundle), then one RefreshBundle so the first fetch has happened; and the
// agents and federated entries of a client in one and a server in the other.
import assert from 'node:assert/strict';
import { createClient } from '@connectrpc/connect';
import { createUnixGrpcTransport, TrustDomainService } from '@ztwim/proto';
import type { RunningAgent } from '@ztwim/agent';
import { spiffeIdParts, type Stack } from './ztwim-stack.ts';

/** `from` federates with `to`: a relationship to `to`'s bundle endpoint, refreshed once. */
export async function federate(from: Stack, to: Stack): Promise<void> {
  const t = createUnixGrpcTransport(from.server.socketPath);
  try {
    const own = await to.server.bundle();
    const r = await createClient(TrustDomainService, t).batchCreateFederationRelationship({
      federationRelationships: [
        {
          trustDomain: to.trustDomain,
          bundleEndpointUrl: `https://127.0.0.1:${to.server.bundleEndpointPort}`,
          bundleEndpointProfile: { case: 'httpsSpiffe', value: { endpointSpiffeId: `spiffe://${to.trustDomain}/spire/server` } },
          trustDomainBundle: { trustDomain: to.trustDomain, x509Authorities: own.x509Authorities.map((a) => ({ asn1: a.asn1 })) },
        },
      ],
    });
    assert.equal(r.results[0]?.status?.code, 0, r.results[0]?.status?.message);
    await createClient(TrustDomainService, t).refreshBundle({ trustDomain: to.trustDomain });
  } finally {
    t.close();
  }
}

/**
 * `a` and `b` federated both ways, an agent in each (1 s sync) and an entry for this process's uid
 * in each, federating with the other domain: `/client` in `a`, `/server` in `b`.
 */
export async function federatedClientAndServer(a: Stack, b: Stack): Promise<{ agentA: RunningAgent; agentB: RunningAgent }> {
  await federate(a, b);
  await federate(b, a);
  const [{ agent: agentA }, { agent: agentB }] = [await a.startAgent({ syncInterval: '1s' }), await b.startAgent({ syncInterval: '1s' })];
  const uid = process.getuid?.() ?? 0;
  for (const [s, agentId, path, fed] of [
    [a, agentA.agentId, '/client', b.trustDomain],
    [b, agentB.agentId, '/server', a.trustDomain],
  ] as const) {
    const r = await s.entry.batchCreateEntry({
      entries: [
        {
          parentId: spiffeIdParts(agentId),
          spiffeId: { trustDomain: s.trustDomain, path },
          selectors: [{ type: 'unix', value: `uid:${uid}` }],
          federatesWith: [fed],
        },
      ],
    });
    assert.equal(r.results[0]?.status?.code, 0, r.results[0]?.status?.message);
  }
  return { agentA, agentB };
}
