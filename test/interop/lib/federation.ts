// Federating two ztwim stacks through the TrustDomain API (https_spiffe, the other server's
// bundle as bootstrap bundle), then one RefreshBundle so the first fetch has happened.
import assert from 'node:assert/strict';
import { createClient } from '@connectrpc/connect';
import { createUnixGrpcTransport, TrustDomainService } from '@ztwim/proto';
import type { Stack } from './ztwim-stack.ts';

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
