// As SPIRE's agent check (spire-api-wire.md §2.5): a refused agent gets only the generic denial
// and a reason code; the server log says which agent, from where, for which method, and why
// (with both serials when the SVID is not the active one). authz.test.ts covers the decisions.
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { createContextValues } from '@connectrpc/connect';
import { createLogger, unixSeconds } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { createCaCertificate, X509Ca } from '../ca/x509-ca.ts';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import { authorizationInterceptor } from './authz.ts';
import { transportKey } from './caller.ts';

const TD = TrustDomain.parse('example.org');
const METHOD = 'spire.api.server.entry.v1.Entry/GetAuthorizedEntries';

describe('authorization: refused agents are logged with the reason', () => {
  it('not attested, banned, expired and not-active agents each log one warning naming the agent, address, method and cause', async () => {
    await withTempSqliteStore(async (ds) => {
      const clock = new FakeClock(Date.now());
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const ca = new X509Ca({
        trustDomain: TD,
        key,
        chain: createCaCertificate({ trustDomain: TD, key, ttlMs: 24 * 3600_000, now: clock.now() }),
        clock,
        x509SvidTtlMs: 3600_000,
      });
      const svid = (id: string) => {
        const r = ca.signX509Svid({ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, spiffeId: SpiffeId.parse(id) });
        return { chain: r.certChain, serial: r.serial.toString(10), expiresAt: unixSeconds(r.notAfter) };
      };
      const lines: Array<Record<string, unknown>> = [];
      const log = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
      const interceptor = authorizationInterceptor({
        dataStore: ds,
        clock,
        adminIds: [],
        verifyPeer: (c) => SpiffeId.parse(/URI:(spiffe:\/\/\S+?)(?:,|$)/.exec(new X509Certificate(c[0] as Uint8Array).subjectAltName ?? '')?.[1] ?? ''),
        isAgentPath: (id) => id.path.startsWith('/spire/agent/'),
        log,
      });
      const call = async (chain: readonly Uint8Array[]): Promise<void> => {
        const [service, name] = METHOD.split('/') as [string, string];
        const req = {
          service: { typeName: service },
          method: { name },
          contextValues: createContextValues().set(transportKey, { kind: 'tls', peerChain: chain, remoteAddress: '10.0.0.7:4000' }),
        };
        const run = interceptor((async () => ({ message: {} })) as never) as unknown as (r: typeof req) => Promise<unknown>;
        await assert.rejects(run(req));
      };
      const warned = async (chain: readonly Uint8Array[]): Promise<Record<string, unknown>> => {
        lines.length = 0;
        await call(chain);
        assert.equal(lines.length, 1, JSON.stringify(lines));
        const { time: _time, ...rest } = lines[0] as Record<string, unknown>;
        return rest;
      };
      const where = (id: string) => ({ level: 'warn', agent_id: id, caller_addr: '10.0.0.7:4000', method: METHOD });

      const unknown = 'spiffe://example.org/spire/agent/x/unknown';
      assert.deepEqual(await warned(svid(unknown).chain), { ...where(unknown), msg: 'Agent is not attested' });

      const banned = 'spiffe://example.org/spire/agent/x/banned';
      const b = svid(banned);
      await ds.createAttestedNode({ spiffeId: banned, attestationType: 'x', serialNumber: b.serial, expiresAt: b.expiresAt, canReattest: false });
      await ds.banAttestedNode(banned);
      assert.deepEqual(await warned(b.chain), { ...where(banned), msg: 'Agent is banned' });

      const stale = 'spiffe://example.org/spire/agent/x/stale';
      const current = svid(stale);
      const old = svid(stale);
      await ds.createAttestedNode({ spiffeId: stale, attestationType: 'x', serialNumber: current.serial, expiresAt: current.expiresAt, canReattest: false });
      assert.deepEqual(await warned(old.chain), {
        ...where(stale),
        svid_serial_number: old.serial,
        serial_number: current.serial,
        msg: 'Agent SVID is not active',
      });

      const expired = 'spiffe://example.org/spire/agent/x/expired';
      const e = svid(expired);
      await ds.createAttestedNode({
        spiffeId: expired,
        attestationType: 'x',
        serialNumber: e.serial,
        expiresAt: unixSeconds(clock.now()) - 1,
        canReattest: false,
      });
      assert.deepEqual(await warned(e.chain), { ...where(expired), msg: 'Agent SVID is expired' });
    });
  });
});
