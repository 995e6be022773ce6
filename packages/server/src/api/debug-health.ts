import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { invalidArgument, spiffeIdToWire, unixSeconds, type Clock } from '@ztwim/core';
import { parseCertificate } from '@ztwim/spiffe/internal';
import type { TrustDomain } from '@ztwim/spiffe';
import { HealthCheckResponse_ServingStatus, type DebugService, type HealthService } from '@ztwim/proto';
import type { DataStore } from '../datastore/datastore.ts';

export interface DebugDeps {
  readonly dataStore: DataStore;
  readonly trustDomain: TrustDomain;
  readonly clock: Clock;
  readonly startedAt: Date;
  /** The server's current SVID chain (DER, leaf first). */
  readonly serverChain: () => readonly Uint8Array[];
}

/** grpc.health.v1.Health: SERVING when the own bundle can be read from the datastore. */
export function healthService(deps: { dataStore: DataStore; trustDomain: TrustDomain }): ServiceImpl<typeof HealthService> {
  return {
    async check(req) {
      if (req.service !== '') throw invalidArgument(`unknown service "${req.service}"`);
      try {
        const b = await deps.dataStore.getBundle(deps.trustDomain.name);
        return { status: b === null ? HealthCheckResponse_ServingStatus.NOT_SERVING : HealthCheckResponse_ServingStatus.SERVING };
      } catch {
        return { status: HealthCheckResponse_ServingStatus.NOT_SERVING };
      }
    },
    // eslint-disable-next-line require-yield
    async *watch() {
      throw new ConnectError('watch is not implemented', Code.Unimplemented);
    },
  };
}

/** spire.api.server.debug.v1.Debug/GetInfo. */
export function debugService(deps: DebugDeps): ServiceImpl<typeof DebugService> {
  return {
    async getInfo() {
      const bundles = await deps.dataStore.countBundles();
      return {
        svidChain: deps.serverChain().map((der) => {
          const c = parseCertificate(der);
          const uri = c.uris.find((u) => u.startsWith('spiffe://'));
          return {
            ...(uri === undefined ? {} : { id: spiffeIdToWire(uri) }),
            expiresAt: BigInt(unixSeconds(c.notAfter)),
            subject: c.node.subject.split('\n').reverse().join(','),
          };
        }),
        uptime: Math.floor((deps.clock.nowMs() - deps.startedAt.getTime()) / 1000),
        agentsCount: await deps.dataStore.countAttestedNodes(),
        entriesCount: await deps.dataStore.countEntries(),
        federatedBundlesCount: Math.max(0, bundles - 1),
      };
    },
  };
}
