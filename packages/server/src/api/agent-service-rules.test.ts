// SPIRE's Agent API rules (spire-api-wire.md §1.2, §2.2, §2.5; spiffe/spire
// pkg/server/api/agent/v1/service.go): the admin calls (Count/List/Get/Delete/Ban with their
// filters and output mask), AttestAgent's checks and its create-or-update of the node, RenewAgent,
// CreateJoinToken and PostStatus, each driven on the service over a real store and CA.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import { unixSeconds } from '@ztwim/core';
import {
  AgentService,
  AttestAgentRequestSchema,
  PermissionDeniedDetails_Reason,
  permissionDeniedReasonOf,
  SelectorMatch_MatchBehavior,
  type CountAgentsRequest,
  type ListAgentsRequest,
} from '@ztwim/proto';
import { SpiffeId } from '@ztwim/spiffe';
import { captureLogs } from '@ztwim/testkit';
import { makeCsr, P256, P384 } from '../ca/fixtures.test-util.ts';
import { JoinTokenAttestor } from '../attestation/join-token.ts';
import type { NodeAttestor, NodeAttestationResult } from '../attestation/node-attestor.ts';
import { handlerContext } from './handler-context.test-util.ts';
import { attestAs, attestRaw, wireError, withAgentService, type AgentSvc, type Attestors } from './agent-service.test-util.ts';

/** An attestor that asks `rounds` challenges (answer = challenge reversed) and then returns `result(payload)`. */
function scripted(name: string, result: (payload: string) => NodeAttestationResult, rounds = 1): NodeAttestor {
  return {
    name,
    async attest(payload, challenge) {
      for (let i = 0; i < rounds; i++) {
        const ch = new TextEncoder().encode(`${name}-round-${i}`);
        const answer = await challenge(ch);
        if (Buffer.compare(Buffer.from(answer), Buffer.from(ch).reverse()) !== 0) throw new Error('wrong answer');
      }
      return result(Buffer.from(payload).toString());
    },
  };
}

const node = (id: string, selectors: Array<{ type: string; value: string }> = [], canReattest = true): NodeAttestationResult => ({
  agentId: SpiffeId.parse(id),
  selectors,
  canReattest,
});

/** `p` (a handler's result) fails with `code` and `message`, as the error interceptor maps it. */
async function rejects(p: unknown, code: Code, message: RegExp | string): Promise<void> {
  await assert.rejects(Promise.resolve(p), (e: unknown) => {
    const ce = wireError(e);
    assert.equal(ce.code, code, ce.message);
    if (typeof message === 'string') assert.equal(ce.rawMessage, message);
    else assert.match(ce.rawMessage, message);
    return true;
  });
}

const wireId = (path: string, trustDomain = 'example.org') => ({ trustDomain, path });
const certOf = (chain: readonly Uint8Array[] | undefined): X509Certificate => new X509Certificate(Buffer.from(chain?.[0] ?? new Uint8Array()));
const decimalSerial = (c: X509Certificate): string => BigInt(`0x${c.serialNumber}`).toString(10);
const spki = (c: X509Certificate): string => c.publicKey.export({ type: 'spki', format: 'der' }).toString('hex');

type FilterInit = Partial<Omit<NonNullable<CountAgentsRequest['filter']>, '$typeName' | '$unknown'>>;
const count = async (svc: AgentSvc, filter?: FilterInit): Promise<number> =>
  (
    await svc.countAgents!(
      { filter: filter === undefined ? undefined : { byAttestationType: '', byExpiresBefore: '', ...filter } } as CountAgentsRequest,
      {} as never,
    )
  ).count as number;
const list = (svc: AgentSvc, req: Partial<Omit<ListAgentsRequest, '$typeName' | '$unknown'>>) =>
  svc.listAgents!({ pageSize: 0, pageToken: '', ...req } as ListAgentsRequest, {} as never);

describe('Agent API: admin calls', () => {
  it('GetAgent returns every field without a mask; a mask keeps only its fields (the ID always)', async () => {
    await withAgentService({}, async ({ svc, ds }) => {
      await ds.createAttestedNode({
        spiffeId: 'spiffe://example.org/spire/agent/t/a',
        attestationType: 't',
        serialNumber: '42',
        expiresAt: 1_900_000_000,
        canReattest: true,
      });
      await ds.setNodeSelectors('spiffe://example.org/spire/agent/t/a', [{ type: 't', value: 'v' }]);
      const full = await svc.getAgent!({ id: wireId('/spire/agent/t/a') } as never, {} as never);
      assert.deepEqual(full, {
        id: { trustDomain: 'example.org', path: '/spire/agent/t/a' },
        attestationType: 't',
        x509svidSerialNumber: '42',
        x509svidExpiresAt: 1_900_000_000n,
        selectors: [{ type: 't', value: 'v' }],
        banned: false,
        canReattest: true,
      });
      const masked = await svc.getAgent!(
        {
          id: wireId('/spire/agent/t/a'),
          outputMask: { attestationType: false, x509svidSerialNumber: true, x509svidExpiresAt: false, selectors: false, banned: true, canReattest: false },
        } as never,
        {} as never,
      );
      assert.deepEqual(masked, { id: { trustDomain: 'example.org', path: '/spire/agent/t/a' }, x509svidSerialNumber: '42', banned: false });
      const other = await svc.getAgent!(
        {
          id: wireId('/spire/agent/t/a'),
          outputMask: { attestationType: true, x509svidSerialNumber: false, x509svidExpiresAt: true, selectors: true, banned: false, canReattest: true },
        } as never,
        {} as never,
      );
      assert.deepEqual(Object.keys(other).sort(), ['attestationType', 'canReattest', 'id', 'selectors', 'x509svidExpiresAt']);
    });
  });

  it('an agent ID must be under /spire/agent/ of the trust domain (InvalidArgument "invalid agent ID"); unknown: NotFound', async () => {
    await withAgentService({}, async ({ svc }) => {
      for (const id of [
        wireId('/spire/agent/x', 'other.org'),
        wireId('/workload/x'),
        wireId('/spire/agentx/y'),
        wireId('/x/spire/agent/y'),
        wireId('/spire/agent', 'example.org'),
      ]) {
        await rejects(
          svc.getAgent!({ id } as never, {} as never),
          Code.InvalidArgument,
          /^invalid agent ID: ".*" is not an agent in trust domain "example.org"$/,
        );
        await rejects(svc.deleteAgent!({ id } as never, {} as never), Code.InvalidArgument, /^invalid agent ID: /);
        await rejects(svc.banAgent!({ id } as never, {} as never), Code.InvalidArgument, /^invalid agent ID: /);
      }
      await rejects(svc.getAgent!({ id: wireId('no-slash') } as never, {} as never), Code.InvalidArgument, /^invalid agent ID: SPIFFE ID: /);
      await rejects(svc.getAgent!({} as never, {} as never), Code.InvalidArgument, /^invalid agent ID: SPIFFE ID: request must specify SPIFFE ID$/);
      for (const call of [svc.getAgent!, svc.deleteAgent!, svc.banAgent!])
        await rejects(call({ id: wireId('/spire/agent/none') } as never, {} as never), Code.NotFound, /^agent not found$/);
    });
  });

  it('BanAgent blanks the serial (banned) and logs it; DeleteAgent removes the node and logs it', async () => {
    const { log, lines } = captureLogs('info');
    await withAgentService({ log }, async ({ svc, ds }) => {
      for (const n of ['a', 'b'])
        await ds.createAttestedNode({ spiffeId: `spiffe://example.org/spire/agent/t/${n}`, attestationType: 't', serialNumber: '7', expiresAt: 1_900_000_000 });
      assert.deepEqual(await svc.banAgent!({ id: wireId('/spire/agent/t/a') } as never, {} as never), {});
      assert.equal((await svc.getAgent!({ id: wireId('/spire/agent/t/a') } as never, {} as never)).banned, true);
      assert.equal((await ds.getAttestedNode('spiffe://example.org/spire/agent/t/b'))?.serialNumber, '7');
      assert.deepEqual(await svc.deleteAgent!({ id: wireId('/spire/agent/t/b') } as never, {} as never), {});
      assert.equal(await ds.getAttestedNode('spiffe://example.org/spire/agent/t/b'), null);
      assert.notEqual(await ds.getAttestedNode('spiffe://example.org/spire/agent/t/a'), null);
      const logged = lines.map((l) => [l['msg'], l['agent_id']]);
      assert.deepEqual(logged, [
        ['Agent banned', 'spiffe://example.org/spire/agent/t/a'],
        ['Agent deleted', 'spiffe://example.org/spire/agent/t/b'],
      ]);
    });
  });

  it('CountAgents and ListAgents apply each filter: attestation type, selectors, banned, can_reattest, expires before', async () => {
    await withAgentService({}, async ({ svc, ds }) => {
      const add = async (n: string, type: string, expiresAt: number, canReattest: boolean, sel: string) => {
        await ds.createAttestedNode({ spiffeId: `spiffe://example.org/spire/agent/${n}`, attestationType: type, serialNumber: '1', expiresAt, canReattest });
        await ds.setNodeSelectors(`spiffe://example.org/spire/agent/${n}`, [{ type, value: sel }]);
      };
      // 2026-12-07 08:00:00 UTC = 1796630400
      await add('a', 'x509pop', 1_796_630_399, true, 's1');
      await add('b', 'x509pop', 1_796_630_400, false, 's2');
      await add('c', 'join_token', 1_796_630_401, false, 's1');
      await ds.banAttestedNode('spiffe://example.org/spire/agent/c');
      assert.equal(await count(svc), 3);
      assert.equal(await count(svc, {}), 3);
      assert.equal(await count(svc, { byAttestationType: 'x509pop' }), 2);
      assert.equal(await count(svc, { byBanned: true }), 1);
      assert.equal(await count(svc, { byBanned: false }), 2);
      assert.equal(await count(svc, { byCanReattest: true }), 1);
      assert.equal(await count(svc, { byCanReattest: false }), 2);
      const bySel = { selectors: [{ type: 'x509pop', value: 's1' }], match: SelectorMatch_MatchBehavior.MATCH_EXACT };
      assert.equal(await count(svc, { bySelectorMatch: bySel as never }), 1);
      // SPIRE's layout `2006-01-02 15:04:05 -0700 -07` (the CLI's), with or without the zone name, and RFC 3339.
      assert.equal(await count(svc, { byExpiresBefore: '2026-12-07 08:00:00 +0000 UTC' }), 1);
      assert.equal(await count(svc, { byExpiresBefore: '2026-12-07 10:00:01 +0200 +02' }), 2);
      assert.equal(await count(svc, { byExpiresBefore: '2026-12-07 03:00:02 -0500' }), 3);
      assert.equal(await count(svc, { byExpiresBefore: '2026-12-07T08:00:01Z' }), 2);
      const names = async (filter: FilterInit) =>
        (await list(svc, { filter: { byAttestationType: '', byExpiresBefore: '', ...filter } as never })).agents?.map((a) => a.id?.path);
      assert.deepEqual(await names({ byAttestationType: 'join_token' }), ['/spire/agent/c']);
      assert.deepEqual(await names({ byExpiresBefore: '2026-12-07 08:00:01 +0000 UTC', byCanReattest: false }), ['/spire/agent/b']);
    });
  });

  it('an expires-before filter that is not a time is InvalidArgument naming it', async () => {
    await withAgentService({}, async ({ svc }) => {
      for (const s of ['tomorrow', 'x2026-12-07 08:00:00 +0000 UTC', '2026-12-07 08:00:00 +0000 UTC trailing', '26-12-07 08:00:00 +0000 UTC'])
        await rejects(count(svc, { byExpiresBefore: s }), Code.InvalidArgument, `failed to parse expires before filter "${s}"`);
    });
  });

  it('ListAgents: page_size 0 lists everything, a page size pages with a token, a negative one is InvalidArgument', async () => {
    await withAgentService({}, async ({ svc, ds }) => {
      for (const n of ['a', 'b', 'c'])
        await ds.createAttestedNode({ spiffeId: `spiffe://example.org/spire/agent/${n}`, attestationType: 't', serialNumber: '1', expiresAt: 1_900_000_000 });
      const all = await list(svc, {});
      assert.equal(all.agents?.length, 3);
      assert.equal(all.nextPageToken, '');
      const seen: string[] = [];
      let token = '';
      for (let i = 0; i < 4; i++) {
        const page = await list(svc, { pageSize: 2, pageToken: token, outputMask: { attestationType: true } as never });
        assert.ok((page.agents?.length ?? 0) <= 2);
        for (const a of page.agents ?? []) {
          seen.push(a.id?.path ?? '');
          assert.deepEqual(Object.keys(a).sort(), ['attestationType', 'id']);
        }
        token = page.nextPageToken ?? '';
        if (token === '') break;
      }
      assert.deepEqual(seen.sort(), ['/spire/agent/a', '/spire/agent/b', '/spire/agent/c']);
      await rejects(list(svc, { pageSize: -1 }), Code.InvalidArgument, /^page size must not be negative$/);
    });
  });

  it('PostStatus is Unimplemented', async () => {
    await withAgentService({}, async ({ svc }) => {
      await rejects(svc.postStatus!({} as never, {} as never), Code.Unimplemented, /^unimplemented$/);
    });
  });
});

describe('Agent API: AttestAgent', () => {
  const two: Attestors = () => [
    scripted(
      'two',
      (p) =>
        node(
          `spiffe://example.org/spire/agent/two/${p}`,
          [
            { type: 'two', value: 'x' },
            { type: 'two', value: 'y' },
          ],
          false,
        ),
      2,
    ),
    scripted('any', (p) => node(p), 0),
  ];

  it('relays every challenge round, then answers with the SVID (TTL agent_ttl, the CSR key) and stores the node', async () => {
    const csr = await makeCsr(P256);
    const attested: string[] = [];
    const { log, lines } = captureLogs('info');
    await withAgentService({ attestors: two, agentTtlMs: 600_000, onAgentAttested: (id) => attested.push(id), log }, async ({ svc, ds, clock }) => {
      const res = await attestAs(svc, 'two', 'n1', csr);
      assert.deepEqual(
        res.slice(0, 2).map((r) => [r.step?.case, Buffer.from(r.step?.value as Uint8Array).toString()]),
        [
          ['challenge', 'two-round-0'],
          ['challenge', 'two-round-1'],
        ],
      );
      assert.equal(res.length, 3);
      const step = res[2]?.step;
      assert.equal(step?.case, 'result');
      const result = step?.value as { svid: { certChain: Uint8Array[]; id: unknown; expiresAt: bigint }; reattestable: boolean };
      const cert = certOf(result.svid.certChain);
      assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/spire/agent/two/n1');
      assert.equal(spki(cert), P256.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'));
      const expiresAt = unixSeconds(clock.now()) + 600;
      assert.equal(result.svid.expiresAt, BigInt(expiresAt));
      assert.equal(unixSeconds(new Date(cert.validTo)), expiresAt);
      assert.deepEqual(result.svid.id, { trustDomain: 'example.org', path: '/spire/agent/two/n1' });
      assert.equal(result.reattestable, false);
      const n = await ds.getAttestedNode('spiffe://example.org/spire/agent/two/n1');
      assert.ok(n !== null);
      assert.equal(n.attestationType, 'two');
      assert.equal(n.serialNumber, decimalSerial(cert));
      assert.equal(n.expiresAt, expiresAt);
      assert.equal(n.canReattest, false);
      assert.deepEqual(await ds.getNodeSelectors(n.spiffeId), [
        { type: 'two', value: 'x' },
        { type: 'two', value: 'y' },
      ]);
      assert.deepEqual(attested, ['spiffe://example.org/spire/agent/two/n1']);
      assert.deepEqual(
        lines.map((l) => [l['msg'], l['agent_id'], l['node_attestor_type']]),
        [['Agent attestation request completed', 'spiffe://example.org/spire/agent/two/n1', 'two']],
      );
    });
  });

  it('re-attestation of an existing agent updates it in place: new serial and expiry, pending renewal cleared, selectors replaced, entries kept', async () => {
    let selectors = [{ type: 'any', value: 'first' }];
    let canReattest = true;
    const attestors = () => [scripted('any', (p) => node(p, selectors, canReattest), 0)];
    await withAgentService({ attestors }, async ({ svc, ds, clock }) => {
      const id = 'spiffe://example.org/spire/agent/any/n';
      const first = await attestAs(svc, 'any', id, await makeCsr(P256));
      const before = await ds.getAttestedNode(id);
      assert.ok(before !== null);
      const child = await ds.createEntry({ spiffeId: 'spiffe://example.org/w', parentId: id, selectors: [{ type: 'unix', value: 'uid:1' }] });
      await ds.updateAttestedNode(id, { newSerialNumber: '99', newExpiresAt: 1_900_000_000, attestationType: 'older' });
      clock.advance(60_000);
      selectors = [{ type: 'any', value: 'second' }];
      canReattest = false;
      const again = await attestAs(svc, 'any', id, await makeCsr(P384));
      const cert = certOf((again[0]?.step?.value as { svid: { certChain: Uint8Array[] } }).svid.certChain);
      assert.notEqual(decimalSerial(cert), decimalSerial(certOf((first[0]?.step?.value as { svid: { certChain: Uint8Array[] } }).svid.certChain)));
      const after = await ds.getAttestedNode(id);
      assert.ok(after !== null);
      assert.equal(after.serialNumber, decimalSerial(cert));
      assert.equal(after.expiresAt, unixSeconds(clock.now()) + 600);
      assert.equal(after.newSerialNumber, '');
      assert.equal(after.newExpiresAt, 0);
      assert.equal(after.canReattest, false);
      assert.equal(after.attestationType, 'any');
      assert.equal(after.createdAt, before.createdAt);
      assert.deepEqual(await ds.getNodeSelectors(id), [{ type: 'any', value: 'second' }]);
      assert.deepEqual((await ds.getEntry(child.id))?.parentId, id);
      assert.equal(await count(svc), 1);
    });
  });

  it('only the server ID itself is refused (Internal), another trust domain is InvalidArgument; an ID outside /spire/agent/ is accepted (SPIRE only warns)', async () => {
    const attestors = () => [scripted('any', (p) => node(p), 0)];
    await withAgentService({ attestors }, async ({ svc, ds }) => {
      await rejects(
        attestAs(svc, 'any', 'spiffe://example.org/spire/server', await makeCsr(P256)),
        Code.Internal,
        /^failed to attest: agent ID cannot be the server ID$/,
      );
      await rejects(
        attestAs(svc, 'any', 'spiffe://other.org/spire/agent/x', await makeCsr(P256)),
        Code.InvalidArgument,
        /^failed to attest: agent ID "spiffe:\/\/other.org\/spire\/agent\/x" is not in trust domain "example.org"$/,
      );
      assert.equal(await count(svc), 0);
      // The trust domain's own ID is not the server ID: it reaches the CA, which refuses it.
      await rejects(attestAs(svc, 'any', 'spiffe://example.org', await makeCsr(P256)), Code.InvalidArgument, /non-root path/);
      for (const id of ['spiffe://example.org/node/x', 'spiffe://example.org/spire/server/x']) {
        const r = await attestAs(svc, 'any', id, await makeCsr(P256));
        assert.equal(r.at(-1)?.step?.case, 'result', id);
        assert.notEqual(await ds.getAttestedNode(id), null, id);
      }
    });
  });

  it('a banned agent is refused with PermissionDenied AGENT_BANNED and no SVID; it stays banned', async () => {
    const attestors = () => [scripted('any', (p) => node(p), 0)];
    await withAgentService({ attestors }, async ({ svc, ds }) => {
      const id = 'spiffe://example.org/spire/agent/any/b';
      await attestAs(svc, 'any', id, await makeCsr(P256));
      await svc.banAgent!({ id: wireId('/spire/agent/any/b') } as never, {} as never);
      await assert.rejects(attestAs(svc, 'any', id, await makeCsr(P256)), (e: unknown) => {
        const ce = wireError(e);
        assert.equal(ce.code, Code.PermissionDenied);
        assert.equal(ce.rawMessage, 'failed to attest: agent is banned');
        assert.equal(permissionDeniedReasonOf(ce), PermissionDeniedDetails_Reason.AGENT_BANNED);
        return true;
      });
      assert.equal((await ds.getAttestedNode(id))?.serialNumber, '');
    });
  });

  it('malformed first messages are InvalidArgument; a type with no configured attestor is FailedPrecondition', async () => {
    await withAgentService({ attestors: two }, async ({ svc }) => {
      const csr = await makeCsr(P256);
      const params = (v: object) => create(AttestAgentRequestSchema, { step: { case: 'params', value: v } });
      const data = { type: 'two', payload: new Uint8Array([1]) };
      await rejects(attestRaw(svc, []), Code.InvalidArgument, /^malformed param: missing params$/);
      await rejects(
        attestRaw(svc, [create(AttestAgentRequestSchema, { step: { case: 'challengeResponse', value: new Uint8Array([1]) } })]),
        Code.InvalidArgument,
        /^malformed param: missing params$/,
      );
      await rejects(attestRaw(svc, [params({ params: { csr } })]), Code.InvalidArgument, /^malformed param: missing attestation data$/);
      await rejects(
        attestRaw(svc, [params({ data: { ...data, type: '' }, params: { csr } })]),
        Code.InvalidArgument,
        /^malformed attestation data: missing type$/,
      );
      await rejects(
        attestRaw(svc, [params({ data: { ...data, payload: new Uint8Array() }, params: { csr } })]),
        Code.InvalidArgument,
        /^malformed attestation data: missing payload$/,
      );
      await rejects(attestRaw(svc, [params({ data })]), Code.InvalidArgument, /^malformed param: missing X509-SVID params$/);
      await rejects(attestRaw(svc, [params({ data, params: { csr: new Uint8Array() } })]), Code.InvalidArgument, /^malformed param: missing X509-SVID params$/);
      await rejects(
        attestRaw(svc, [params({ data: { ...data, type: 'tpm' }, params: { csr } })]),
        Code.FailedPrecondition,
        /^error getting node attestor: could not find node attestor type "tpm"$/,
      );
    });
  });

  it('a challenge round that gets no challenge response (stream ended, or params again) fails with InvalidArgument', async () => {
    await withAgentService({ attestors: two }, async ({ svc, ds }) => {
      const csr = await makeCsr(P256);
      const first = create(AttestAgentRequestSchema, {
        step: { case: 'params', value: { data: { type: 'two', payload: new Uint8Array([0x6e]) }, params: { csr } } },
      });
      await rejects(attestRaw(svc, [first]), Code.InvalidArgument, /^expected a challenge response$/);
      await rejects(attestRaw(svc, [first, first]), Code.InvalidArgument, /^expected a challenge response$/);
      assert.equal(await count(svc), 0);
      assert.equal(await ds.getAttestedNode('spiffe://example.org/spire/agent/two/n'), null);
    });
  });

  it('a CSR that does not parse fails the attestation with InvalidArgument and stores nothing', async () => {
    const attestors = () => [scripted('any', (p) => node(p), 0)];
    await withAgentService({ attestors }, async ({ svc }) => {
      await rejects(attestAs(svc, 'any', 'spiffe://example.org/spire/agent/any/c', new Uint8Array([1, 2, 3])), Code.InvalidArgument, /^csr: /);
      assert.equal(await count(svc), 0);
    });
  });

  it('join_token: the agent gets spiffe://<td>/spire/agent/join_token/<token>, not reattestable', async () => {
    const attestors: Attestors = (ds, clock, td) => [new JoinTokenAttestor({ dataStore: ds, trustDomain: td, clock })];
    await withAgentService({ attestors }, async ({ svc, ds }) => {
      const t = await svc.createJoinToken!({ ttl: 60, token: 'tok' } as never, {} as never);
      const r = await attestAs(svc, 'join_token', t.value ?? '', await makeCsr(P256));
      const result = r.at(-1)?.step?.value as { svid: { id: unknown }; reattestable: boolean };
      assert.deepEqual(result.svid.id, { trustDomain: 'example.org', path: '/spire/agent/join_token/tok' });
      assert.equal(result.reattestable, false);
      assert.equal((await ds.getAttestedNode('spiffe://example.org/spire/agent/join_token/tok'))?.attestationType, 'join_token');
    });
  });
});

describe('Agent API: RenewAgent', () => {
  const ctxFor = (agentId?: SpiffeId) =>
    handlerContext(AgentService, AgentService.method.renewAgent, {
      caller: { local: false, admin: false, remoteAddress: '', ...(agentId === undefined ? {} : { agentId }) },
    });

  it('signs the CSR key (a new key) for the caller agent and stores it as the pending serial and expiry', async () => {
    const attestors = () => [scripted('any', (p) => node(p, [], false), 0)];
    await withAgentService({ attestors, agentTtlMs: 900_000 }, async ({ svc, ds, clock }) => {
      const id = 'spiffe://example.org/spire/agent/any/r';
      await attestAs(svc, 'any', id, await makeCsr(P256));
      const current = await ds.getAttestedNode(id);
      clock.advance(30_000);
      const res = await svc.renewAgent!({ params: { csr: await makeCsr(P384) } } as never, ctxFor(SpiffeId.parse(id)));
      const cert = certOf(res.svid?.certChain as Uint8Array[]);
      assert.equal(spki(cert), P384.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'));
      assert.equal(cert.subjectAltName, `URI:${id}`);
      assert.deepEqual(res.svid?.id, { trustDomain: 'example.org', path: '/spire/agent/any/r' });
      const expiresAt = unixSeconds(clock.now()) + 900;
      assert.equal(res.svid?.expiresAt, BigInt(expiresAt));
      const after = await ds.getAttestedNode(id);
      assert.equal(after?.newSerialNumber, decimalSerial(cert));
      assert.equal(after?.newExpiresAt, expiresAt);
      assert.equal(after?.serialNumber, current?.serialNumber);
      assert.equal(after?.expiresAt, current?.expiresAt);
    });
  });

  it('refusals: no agent caller (PermissionDenied), unknown node (NotFound), reattestable node (AGENT_MUST_REATTEST), missing or bad CSR (InvalidArgument)', async () => {
    const attestors = () => [scripted('any', (p) => node(p, [], p.endsWith('/re')), 0)];
    await withAgentService({ attestors }, async ({ svc, ds }) => {
      const csr = await makeCsr(P256);
      await rejects(svc.renewAgent!({ params: { csr } } as never, ctxFor()), Code.PermissionDenied, /^caller is not an agent$/);
      await rejects(
        svc.renewAgent!({ params: { csr } } as never, ctxFor(SpiffeId.parse('spiffe://example.org/spire/agent/any/none'))),
        Code.NotFound,
        /^agent not found$/,
      );
      await attestAs(svc, 'any', 'spiffe://example.org/spire/agent/any/re', csr);
      await assert.rejects(
        Promise.resolve(svc.renewAgent!({ params: { csr } } as never, ctxFor(SpiffeId.parse('spiffe://example.org/spire/agent/any/re')))),
        (e: unknown) => {
          const ce = wireError(e);
          assert.equal(ce.code, Code.PermissionDenied);
          assert.equal(ce.rawMessage, 'agent must reattest instead of renewing');
          assert.equal(permissionDeniedReasonOf(ce), PermissionDeniedDetails_Reason.AGENT_MUST_REATTEST);
          return true;
        },
      );
      const plain = SpiffeId.parse('spiffe://example.org/spire/agent/any/plain');
      await attestAs(svc, 'any', plain.toString(), csr);
      const before = await ds.getAttestedNode(plain.toString());
      await rejects(svc.renewAgent!({} as never, ctxFor(plain)), Code.InvalidArgument, /^missing CSR$/);
      await rejects(svc.renewAgent!({ params: { csr: new Uint8Array() } } as never, ctxFor(plain)), Code.InvalidArgument, /^missing CSR$/);
      await rejects(svc.renewAgent!({ params: { csr: new Uint8Array([9, 9]) } } as never, ctxFor(plain)), Code.InvalidArgument, /^csr: /);
      assert.deepEqual(await ds.getAttestedNode(plain.toString()), before);
    });
  });
});

describe('Agent API: CreateJoinToken', () => {
  it('stores the given token expiring at now + ttl (ttl 1 is the least); without a token, a UUIDv4 from the random source', async () => {
    const random = (n: number) => new Uint8Array(n).fill(0xab);
    await withAgentService({ random }, async ({ svc, ds, clock }) => {
      const now = unixSeconds(clock.now());
      assert.deepEqual(await svc.createJoinToken!({ ttl: 1, token: 'given' } as never, {} as never), { value: 'given', expiresAt: BigInt(now + 1) });
      assert.deepEqual(await ds.takeJoinToken('given'), { token: 'given', expiresAt: now + 1 });
      const gen = await svc.createJoinToken!({ ttl: 600, token: '' } as never, {} as never);
      assert.equal(gen.value, 'abababab-abab-4bab-abab-abababababab');
      assert.deepEqual(await ds.takeJoinToken(gen.value ?? ''), { token: gen.value, expiresAt: now + 600 });
    });
  });

  it('ttl below 1, a token that is not a path segment, or a bad agent_id is InvalidArgument and stores nothing', async () => {
    await withAgentService({}, async ({ svc, ds }) => {
      await rejects(svc.createJoinToken!({ ttl: 0, token: 't0' } as never, {} as never), Code.InvalidArgument, /^ttl is required, you must provide one$/);
      await rejects(svc.createJoinToken!({ ttl: -5, token: 't1' } as never, {} as never), Code.InvalidArgument, /^ttl is required/);
      await rejects(svc.createJoinToken!({ ttl: 60, token: 'a/b' } as never, {} as never), Code.InvalidArgument, /^invalid join token: /);
      await rejects(
        svc.createJoinToken!({ ttl: 60, token: 't2', agentId: wireId('/node', 'other.org') } as never, {} as never),
        Code.InvalidArgument,
        /^invalid agent ID: "spiffe:\/\/other.org\/node" is not a member of trust domain "example.org"$/,
      );
      await rejects(
        svc.createJoinToken!({ ttl: 60, token: 't3', agentId: wireId('/node', '') } as never, {} as never),
        Code.InvalidArgument,
        /^invalid agent ID: SPIFFE ID: trust domain is missing$/,
      );
      for (const t of ['t0', 't1', 't2', 't3']) assert.equal(await ds.takeJoinToken(t), null, t);
      assert.equal((await ds.listEntries()).entries.length, 0);
    });
  });

  it('with agent_id: also an entry {parent the join token agent, spiffe_id agent_id, selector spiffe_id:<join agent>}', async () => {
    await withAgentService({}, async ({ svc, ds, clock }) => {
      const r = await svc.createJoinToken!({ ttl: 60, token: 'jt', agentId: wireId('/node/a') } as never, {} as never);
      assert.equal(r.value, 'jt');
      assert.deepEqual(await ds.takeJoinToken('jt'), { token: 'jt', expiresAt: unixSeconds(clock.now()) + 60 });
      const entries = (await ds.listEntries()).entries;
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.parentId, 'spiffe://example.org/spire/agent/join_token/jt');
      assert.equal(entries[0]?.spiffeId, 'spiffe://example.org/node/a');
      assert.deepEqual(entries[0]?.selectors, [{ type: 'spiffe_id', value: 'spiffe://example.org/spire/agent/join_token/jt' }]);
    });
  });
});
