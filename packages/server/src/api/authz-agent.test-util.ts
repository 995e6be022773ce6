// The authorization interceptor wired for agent-method calls over a given datastore, with a CA
// minting the agents' X509-SVIDs (shared by the authz-*.test.ts files).
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createContextValues } from '@connectrpc/connect';
import { unixSeconds, type Logger } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { createCaCertificate, X509Ca } from '../ca/x509-ca.ts';
import type { DataStore } from '../datastore/datastore.ts';
import { authorizationInterceptor } from './authz.ts';
import { transportKey } from './caller.ts';

const TD = TrustDomain.parse('example.org');

export interface AgentCheckFixture {
  readonly clock: FakeClock;
  /** Mints an X509-SVID for id: its chain, decimal serial and expiry (Unix seconds). */
  svid(id: string): { chain: Uint8Array[]; serial: string; expiresAt: number };
  /** One call of `method` from 10.0.0.7:4000 presenting chain; settles as the interceptor does. */
  call(chain: readonly Uint8Array[]): Promise<unknown>;
}

export function agentCheckFixture(dataStore: DataStore, method: string, log?: Logger): AgentCheckFixture {
  const clock = new FakeClock(Date.now());
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const chain = createCaCertificate({ trustDomain: TD, key, ttlMs: 24 * 3600_000, now: clock.now() });
  const ca = new X509Ca({ trustDomain: TD, key, chain, clock, x509SvidTtlMs: 3600_000 });
  const interceptor = authorizationInterceptor({
    dataStore,
    clock,
    adminIds: [],
    verifyPeer: (c) => SpiffeId.parse(/URI:(spiffe:\/\/\S+?)(?:,|$)/.exec(new X509Certificate(c[0] as Uint8Array).subjectAltName ?? '')?.[1] ?? ''),
    isAgentPath: (id) => id.path.startsWith('/spire/agent/'),
    ...(log === undefined ? {} : { log }),
  });
  const [service, name] = method.split('/') as [string, string];
  return {
    clock,
    svid(id) {
      const r = ca.signX509Svid({ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, spiffeId: SpiffeId.parse(id) });
      return { chain: r.certChain, serial: r.serial.toString(10), expiresAt: unixSeconds(r.notAfter) };
    },
    call(peerChain) {
      const req = {
        service: { typeName: service },
        method: { name },
        contextValues: createContextValues().set(transportKey, { kind: 'tls', peerChain, remoteAddress: '10.0.0.7:4000' }),
      };
      const run = interceptor((async () => ({ message: {} })) as never) as unknown as (r: typeof req) => Promise<unknown>;
      return run(req);
    },
  };
}
