// The authorization interceptor alone, over a real SQLite datastore and real X509-SVIDs: the
// policy table is SPIRE's (pkg/server/authpolicy/policy_data.json, spire-api-wire.md §3), and
// each caller kind gets exactly the methods SPIRE gives it. The end-to-end matrix on real
// sockets is test/integration/server-authz-matrix.test.ts.
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { Code, ConnectError, createContextValues } from '@connectrpc/connect';
import { unixSeconds } from '@ztwim/core';
import { PermissionDeniedDetails_Reason, permissionDeniedReasonOf } from '@ztwim/proto';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { createCaCertificate, X509Ca } from '../ca/x509-ca.ts';
import type { DataStore } from '../datastore/datastore.ts';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import { authorizationInterceptor, rolesFor, type AuthzDeps } from './authz.ts';
import { callerKey, transportKey, type Caller, type Transport } from './caller.ts';

const TD = TrustDomain.parse('example.org');
const ADMIN_METHODS = [
  'spire.api.server.agent.v1.Agent/CountAgents',
  'spire.api.server.agent.v1.Agent/ListAgents',
  'spire.api.server.agent.v1.Agent/GetAgent',
  'spire.api.server.agent.v1.Agent/DeleteAgent',
  'spire.api.server.agent.v1.Agent/BanAgent',
  'spire.api.server.agent.v1.Agent/CreateJoinToken',
  'spire.api.server.entry.v1.Entry/CountEntries',
  'spire.api.server.entry.v1.Entry/ListEntries',
  'spire.api.server.entry.v1.Entry/GetEntry',
  'spire.api.server.entry.v1.Entry/BatchCreateEntry',
  'spire.api.server.entry.v1.Entry/BatchUpdateEntry',
  'spire.api.server.entry.v1.Entry/BatchDeleteEntry',
  'spire.api.server.svid.v1.SVID/MintX509SVID',
  'spire.api.server.svid.v1.SVID/MintJWTSVID',
  'spire.api.server.bundle.v1.Bundle/AppendBundle',
  'spire.api.server.bundle.v1.Bundle/CountBundles',
  'spire.api.server.bundle.v1.Bundle/ListFederatedBundles',
  'spire.api.server.bundle.v1.Bundle/BatchCreateFederatedBundle',
  'spire.api.server.bundle.v1.Bundle/BatchUpdateFederatedBundle',
  'spire.api.server.bundle.v1.Bundle/BatchSetFederatedBundle',
  'spire.api.server.bundle.v1.Bundle/BatchDeleteFederatedBundle',
  'spire.api.server.trustdomain.v1.TrustDomain/ListFederationRelationships',
  'spire.api.server.localauthority.v1.LocalAuthority/GetJWTAuthorityState',
  'spire.api.server.localauthority.v1.LocalAuthority/GetX509AuthorityState',
  'spire.api.server.localauthority.v1.LocalAuthority/PrepareX509Authority',
  'spire.api.server.localauthority.v1.LocalAuthority/ActivateX509Authority',
  'spire.api.server.localauthority.v1.LocalAuthority/PrepareJWTAuthority',
  'spire.api.server.localauthority.v1.LocalAuthority/ActivateJWTAuthority',
  'ztwim.server.v1.Changes/GetRevision',
];
const AGENT_METHODS = [
  'spire.api.server.agent.v1.Agent/RenewAgent',
  'spire.api.server.entry.v1.Entry/GetAuthorizedEntries',
  'spire.api.server.entry.v1.Entry/SyncAuthorizedEntries',
  'spire.api.server.svid.v1.SVID/BatchNewX509SVID',
  'spire.api.server.svid.v1.SVID/NewJWTSVID',
  'ztwim.agent.v1.AgentHints/Watch',
];
const LOCAL_ONLY = ['spire.api.server.debug.v1.Debug/GetInfo', 'grpc.health.v1.Health/Check', 'grpc.health.v1.Health/Watch'];
const DOWNSTREAM = ['spire.api.server.svid.v1.SVID/NewDownstreamX509CA', 'spire.api.server.bundle.v1.Bundle/PublishJWTAuthority'];
const ANY = ['spire.api.server.agent.v1.Agent/AttestAgent', 'spire.api.server.bundle.v1.Bundle/GetBundle'];
const GET_FEDERATED = 'spire.api.server.bundle.v1.Bundle/GetFederatedBundle';

describe('rolesFor: SPIRE policy table', () => {
  it("gives each method exactly SPIRE's roles; unknown methods default to local+admin; PostStatus to nobody", () => {
    for (const m of ADMIN_METHODS) assert.deepEqual([...rolesFor(m)].sort(), ['admin', 'local'], m);
    for (const m of AGENT_METHODS) assert.deepEqual(rolesFor(m), ['agent'], m);
    for (const m of LOCAL_ONLY) assert.deepEqual(rolesFor(m), ['local'], m);
    for (const m of DOWNSTREAM) assert.deepEqual(rolesFor(m), ['downstream'], m);
    for (const m of ANY) assert.deepEqual(rolesFor(m), ['any'], m);
    assert.deepEqual([...rolesFor(GET_FEDERATED)].sort(), ['admin', 'agent', 'local']);
    assert.deepEqual(rolesFor('spire.api.server.agent.v1.Agent/PostStatus'), []);
  });
});

interface Fixture {
  readonly ds: DataStore;
  readonly clock: FakeClock;
  readonly ca: X509Ca;
  /** Mints an SVID; returns its chain and decimal serial. */
  svid(id: string, ttlMs?: number): { chain: Uint8Array[]; serial: string; notAfter: Date };
  /** Runs one call through the interceptor; resolves with the Caller the handler saw. */
  call(method: string, transport: Transport, deps?: Partial<AuthzDeps>): Promise<Caller>;
}

async function withFixture(fn: (f: Fixture) => Promise<void>): Promise<void> {
  await withTempSqliteStore(async (ds) => {
    const clock = new FakeClock(Date.now());
    const caKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const chain = createCaCertificate({ trustDomain: TD, key: caKey, ttlMs: 24 * 3600_000, now: clock.now() });
    const ca = new X509Ca({ trustDomain: TD, key: caKey, chain, clock, x509SvidTtlMs: 3600_000 });
    const svid = (id: string, ttlMs?: number) => {
      const r = ca.signX509Svid({
        publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
        spiffeId: SpiffeId.parse(id),
        ...(ttlMs === undefined ? {} : { ttlMs }),
      });
      return { chain: r.certChain, serial: r.serial.toString(10), notAfter: r.notAfter };
    };
    // The peer's ID as the verifier would return it (chain checks are peer-verifier.test.ts's).
    const verifyPeer = (c: readonly Uint8Array[]): SpiffeId => {
      const uri = /URI:(spiffe:\/\/\S+?)(?:,|$)/.exec(new X509Certificate(c[0] as Uint8Array).subjectAltName ?? '')?.[1];
      return SpiffeId.parse(uri ?? '');
    };
    const base: AuthzDeps = {
      dataStore: ds,
      clock,
      adminIds: [SpiffeId.parse('spiffe://example.org/config-admin'), SpiffeId.parse('spiffe://example.org/second-admin')],
      verifyPeer,
      isAgentPath: (id) => id.memberOf(TD) && id.path.startsWith('/spire/agent/'),
    };
    const call = async (method: string, transport: Transport, deps: Partial<AuthzDeps> = {}): Promise<Caller> => {
      const [service, name] = method.split('/') as [string, string];
      const req = { service: { typeName: service }, method: { name }, contextValues: createContextValues().set(transportKey, transport) };
      let seen: Caller | undefined;
      const next = async (r: typeof req) => {
        seen = r.contextValues.get(callerKey);
        return { message: {} };
      };
      const run = authorizationInterceptor({ ...base, ...deps })(next as never) as unknown as (r: typeof req) => Promise<unknown>;
      await run(req);
      assert.ok(seen !== undefined);
      return seen;
    };
    await fn({ ds, clock, ca, svid, call });
  });
}

const tls = (chain: readonly Uint8Array[] = []): Transport => ({ kind: 'tls', peerChain: chain, remoteAddress: '127.0.0.1:5000' });
const LOCAL: Transport = { kind: 'local' };

/** Rejects with PermissionDenied "authorization denied for method /<m>" and the given detail reason. */
async function denied(p: Promise<unknown>, method: string, reason?: PermissionDeniedDetails_Reason): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ConnectError, String(e));
    assert.equal(e.code, Code.PermissionDenied, `${method}: ${e.message}`);
    assert.equal(e.rawMessage, `authorization denied for method /${method}`);
    assert.equal(permissionDeniedReasonOf(e), reason, `${method}: reason`);
    return true;
  });
}

/** Attests a node for this ID with the SVID's serial and expiry; returns the SVID. */
async function attested(f: Fixture, id: string, ttlMs?: number) {
  const s = f.svid(id, ttlMs);
  await f.ds.createAttestedNode({
    spiffeId: id,
    attestationType: 'join_token',
    serialNumber: s.serial,
    expiresAt: unixSeconds(s.notAfter),
    canReattest: false,
  });
  return s;
}

describe('authorizationInterceptor', () => {
  it('local socket: admin and local-only methods, never agent or downstream methods', async () => {
    await withFixture(async (f) => {
      for (const m of [...ADMIN_METHODS, ...LOCAL_ONLY, ...ANY, GET_FEDERATED]) {
        const c = await f.call(m, LOCAL);
        assert.equal(c.local, true, m);
      }
      for (const m of [...AGENT_METHODS, ...DOWNSTREAM]) await denied(f.call(m, LOCAL), m);
    });
  });

  it('an attested agent: agent methods and GetFederatedBundle only; never admin, local-only or downstream methods', async () => {
    await withFixture(async (f) => {
      const id = 'spiffe://example.org/spire/agent/join_token/a';
      const s = await attested(f, id);
      for (const m of [...AGENT_METHODS, GET_FEDERATED]) {
        const c = await f.call(m, tls(s.chain));
        assert.equal(c.agentId?.toString(), id, m);
        assert.equal(c.admin, false, m);
      }
      for (const m of [...ADMIN_METHODS, ...LOCAL_ONLY, ...DOWNSTREAM]) await denied(f.call(m, tls(s.chain)), m);
    });
  });

  it('admins (admin_ids or an admin=true entry): admin methods; not local-only, agent or downstream methods', async () => {
    await withFixture(async (f) => {
      await f.ds.createEntry({
        spiffeId: 'spiffe://example.org/entry-admin',
        parentId: 'spiffe://example.org/spire/server',
        selectors: [{ type: 'unix', value: 'uid:0' }],
        admin: true,
      });
      for (const id of ['spiffe://example.org/config-admin', 'spiffe://example.org/entry-admin']) {
        const s = f.svid(id);
        for (const m of [...ADMIN_METHODS, GET_FEDERATED]) assert.equal((await f.call(m, tls(s.chain))).admin, true, `${id} ${m}`);
        for (const m of [...LOCAL_ONLY, ...AGENT_METHODS, ...DOWNSTREAM]) await denied(f.call(m, tls(s.chain)), m);
      }
    });
  });

  it('an admin=true entry counts however many other entries share its SPIFFE ID (SPIRE reads them all)', async () => {
    await withFixture(async (f) => {
      const id = 'spiffe://example.org/crowded-admin';
      for (let i = 0; i < 60; i++) {
        await f.ds.createEntry({ spiffeId: id, parentId: 'spiffe://example.org/spire/server', selectors: [{ type: 'unix', value: `uid:${1000 + i}` }] });
      }
      await f.ds.createEntry({ spiffeId: id, parentId: 'spiffe://example.org/spire/server', selectors: [{ type: 'unix', value: 'uid:0' }], admin: true });
      const s = f.svid(id);
      assert.equal((await f.call(ADMIN_METHODS[0] as string, tls(s.chain))).admin, true);
    });
  });

  it('a downstream=true entry: the downstream methods only; it is not an admin', async () => {
    await withFixture(async (f) => {
      const id = 'spiffe://example.org/downstream';
      await f.ds.createEntry({ spiffeId: id, parentId: 'spiffe://example.org/spire/server', selectors: [{ type: 'unix', value: 'uid:0' }], downstream: true });
      const s = f.svid(id);
      for (const m of DOWNSTREAM) assert.equal((await f.call(m, tls(s.chain))).admin, false, m);
      for (const m of [...ADMIN_METHODS, ...LOCAL_ONLY, ...AGENT_METHODS, GET_FEDERATED]) await denied(f.call(m, tls(s.chain)), m);
    });
  });

  it('no client certificate and a workload SVID: only the methods anyone may call', async () => {
    await withFixture(async (f) => {
      // An admin entry for another ID must not make this caller an admin.
      await f.ds.createEntry({
        spiffeId: 'spiffe://example.org/someone-else',
        parentId: 'spiffe://example.org/spire/server',
        selectors: [{ type: 'unix', value: 'uid:0' }],
        admin: true,
      });
      const w = f.svid('spiffe://example.org/workload');
      for (const t of [tls(), tls(w.chain)]) {
        for (const m of ANY) await f.call(m, t);
        for (const m of [...ADMIN_METHODS, ...LOCAL_ONLY, ...AGENT_METHODS, ...DOWNSTREAM, GET_FEDERATED]) await denied(f.call(m, t), m);
      }
    });
  });

  it('agent methods need an agent path: a node record under another path does not make its SVID an agent', async () => {
    await withFixture(async (f) => {
      // A node for a workload ID (as another server sharing the datastore could write it),
      // with the serial of the SVID presented: still not an agent, because of the path.
      const s = await attested(f, 'spiffe://example.org/workload');
      for (const m of AGENT_METHODS) await denied(f.call(m, tls(s.chain)), m);
      // The path check is what refuses it: without it the node check would accept.
      assert.ok((await f.call(AGENT_METHODS[0] as string, tls(s.chain), { isAgentPath: () => true })).agentId !== undefined);
    });
  });

  it("agent check: banned, evicted, superseded and expired agents are refused with SPIRE's reasons", async () => {
    await withFixture(async (f) => {
      const m = 'spire.api.server.entry.v1.Entry/GetAuthorizedEntries';
      const banned = await attested(f, 'spiffe://example.org/spire/agent/join_token/banned');
      await f.call(m, tls(banned.chain));
      await f.ds.banAttestedNode('spiffe://example.org/spire/agent/join_token/banned');
      await denied(f.call(m, tls(banned.chain)), m, PermissionDeniedDetails_Reason.AGENT_BANNED);

      const evicted = await attested(f, 'spiffe://example.org/spire/agent/join_token/evicted');
      await f.call(m, tls(evicted.chain));
      await f.ds.deleteAttestedNode('spiffe://example.org/spire/agent/join_token/evicted');
      await denied(f.call(m, tls(evicted.chain)), m, PermissionDeniedDetails_Reason.AGENT_NOT_ATTESTED);

      // Renewed: the new SVID is accepted (and promoted), then the old one is not active.
      const renewedId = 'spiffe://example.org/spire/agent/join_token/renewed';
      const old = await attested(f, renewedId);
      const next = f.svid(renewedId);
      await f.ds.updateAttestedNode(renewedId, { newSerialNumber: next.serial, newExpiresAt: unixSeconds(next.notAfter) });
      // While the new SVID is pending, an SVID that is neither the current nor the new one is refused.
      const stray = f.svid(renewedId);
      await denied(f.call(m, tls(stray.chain)), m, PermissionDeniedDetails_Reason.AGENT_NOT_ACTIVE);
      await f.call(m, tls(old.chain));
      await f.call(m, tls(next.chain));
      const promoted = await f.ds.getAttestedNode(renewedId);
      assert.equal(promoted?.serialNumber, next.serial);
      assert.equal(promoted?.newSerialNumber, '');
      await denied(f.call(m, tls(old.chain)), m, PermissionDeniedDetails_Reason.AGENT_NOT_ACTIVE);

      // A node recorded without expiry (expires_at 0) does not expire.
      const noExpiry = 'spiffe://example.org/spire/agent/join_token/no-expiry';
      const ne = f.svid(noExpiry);
      await f.ds.createAttestedNode({ spiffeId: noExpiry, attestationType: 'join_token', serialNumber: ne.serial, expiresAt: 0, canReattest: false });
      await f.call(m, tls(ne.chain));

      // Expired: the node's recorded expiry has passed (the verifier here does not check time,
      // as a verifier with a skewed clock or a chain cache would not).
      const expiredId = 'spiffe://example.org/spire/agent/join_token/expired';
      const exp = await attested(f, expiredId, 60_000);
      await f.call(m, tls(exp.chain));
      // Valid through its expiry second (SPIRE: expired when now is after NotAfter).
      f.clock.set(unixSeconds(exp.notAfter) * 1000);
      await f.call(m, tls(exp.chain));
      f.clock.advance(120_000);
      await denied(f.call(m, tls(exp.chain)), m, PermissionDeniedDetails_Reason.AGENT_EXPIRED);
    });
  });

  it('an untrusted client certificate is Unauthenticated, even for methods anyone may call', async () => {
    await withFixture(async (f) => {
      const s = f.svid('spiffe://example.org/spire/agent/join_token/x');
      const verifyPeer = (): SpiffeId => {
        throw new Error('x509: certificate signed by unknown authority');
      };
      for (const m of [...ANY, ...AGENT_METHODS]) {
        await assert.rejects(
          f.call(m, tls(s.chain), { verifyPeer }),
          (e: unknown) => e instanceof ConnectError && e.code === Code.Unauthenticated && /unknown authority/.test(e.rawMessage),
        );
      }
    });
  });
});
