// AgentService/AttestAgent's node attestor dispatch (spire-api-wire.md §2.2): the request's
// attestation type picks the attestor, challenges go back and forth through it, and the result
// is checked (trust domain, server ID, banned node) before an SVID is signed and the node stored.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { unixSeconds } from '@ztwim/core';
import { PermissionDeniedDetails_Reason, permissionDeniedReasonOf } from '@ztwim/proto';
import { SpiffeId } from '@ztwim/spiffe';
import type { FakeClock } from '@ztwim/testkit';
import { makeCsr, P256 } from '../ca/fixtures.test-util.ts';
import type { DataStore } from '../datastore/datastore.ts';
import { JoinTokenAttestor } from '../attestation/join-token.ts';
import type { NodeAttestor } from '../attestation/node-attestor.ts';
import { attestAs, wireError, withAgentService, type AgentSvc, type Attestors } from './agent-service.test-util.ts';

/** A challenge/response attestor: answers must echo the challenge reversed; names the agent by its payload. */
function echoAttestor(name: string, id: (payload: string) => string): NodeAttestor {
  return {
    name,
    async attest(payload, challenge) {
      const ch = new TextEncoder().encode(`nonce-${name}`);
      const answer = await challenge(ch);
      if (Buffer.compare(Buffer.from(answer), Buffer.from(ch).reverse()) !== 0) throw new ConnectError('bad answer', Code.PermissionDenied);
      return {
        agentId: SpiffeId.parse(id(Buffer.from(payload).toString())),
        selectors: [
          { type: name, value: 'a' },
          { type: name, value: 'a' },
        ],
        canReattest: true,
      };
    },
  };
}

const attestors: Attestors = (ds, clock, td) => [
  new JoinTokenAttestor({ dataStore: ds, trustDomain: td, clock }),
  echoAttestor('echo', (p) => `spiffe://example.org/spire/agent/echo/${p}`),
  echoAttestor('other', (p) => p),
];

async function withService(fn: (svc: AgentSvc, ds: DataStore, clock: FakeClock) => Promise<void>): Promise<void> {
  await withAgentService({ attestors }, async ({ svc, ds, clock }) => fn(svc, ds, clock));
}

/** A PKCS#10 CSR (only its key is used by AttestAgent). */
const CSR = await makeCsr(P256);

/** Runs AttestAgent: first `params`, then one reversed echo per challenge (or `answer`); returns the responses. */
const attest = (svc: AgentSvc, type: string, payload: string, opts: { csr?: Uint8Array; answer?: (c: Uint8Array) => Uint8Array } = {}) =>
  attestAs(svc, type, payload, opts.csr ?? CSR, opts.answer);

function rejectsCode(p: Promise<unknown>, code: Code, message: RegExp): Promise<void> {
  return assert.rejects(p, (e: unknown) => {
    // As the error-mapping interceptor maps it on the wire.
    const ce = wireError(e);
    assert.equal(ce.code, code, ce.message);
    assert.match(ce.rawMessage, message);
    return true;
  });
}

describe('AttestAgent dispatch', () => {
  it('picks the attestor by type, relays its challenge, stores the node (deduplicated selectors) and returns its SVID', async () => {
    await withService(async (svc, ds, clock) => {
      const res = await attest(svc, 'echo', 'n1');
      assert.equal(res[0]?.step?.case, 'challenge');
      assert.deepEqual(Buffer.from(res[0]?.step?.value as Uint8Array).toString(), 'nonce-echo');
      const result = res[1]?.step;
      assert.equal(result?.case, 'result');
      const node = await ds.getAttestedNode('spiffe://example.org/spire/agent/echo/n1');
      assert.ok(node !== null);
      assert.equal(node.attestationType, 'echo');
      assert.equal(node.canReattest, true);
      assert.ok(node.expiresAt > unixSeconds(clock.now()));
      assert.deepEqual(await ds.getNodeSelectors(node.spiffeId), [{ type: 'echo', value: 'a' }]);
    });
  });

  it('a wrong challenge answer fails the attestation and stores nothing', async () => {
    await withService(async (svc, ds) => {
      await rejectsCode(attest(svc, 'echo', 'n2', { answer: (c) => c }), Code.PermissionDenied, /bad answer/);
      assert.equal(await ds.getAttestedNode('spiffe://example.org/spire/agent/echo/n2'), null);
    });
  });

  it('an unknown type: FailedPrecondition "error getting node attestor"; malformed params: InvalidArgument', async () => {
    await withService(async (svc) => {
      await rejectsCode(attest(svc, 'x509pop', 'p'), Code.FailedPrecondition, /^error getting node attestor: could not find node attestor type "x509pop"$/);
      await rejectsCode(attest(svc, '', 'p'), Code.InvalidArgument, /missing type/);
      await rejectsCode(attest(svc, 'echo', ''), Code.InvalidArgument, /missing payload/);
      await rejectsCode(attest(svc, 'echo', 'p', { csr: new Uint8Array() }), Code.InvalidArgument, /missing X509-SVID params/);
    });
  });

  it('attestor results naming the server, another trust domain, or a banned node are refused', async () => {
    await withService(async (svc, ds) => {
      await rejectsCode(attest(svc, 'other', 'spiffe://example.org/spire/server'), Code.Internal, /cannot be the server ID/);
      await rejectsCode(attest(svc, 'other', 'spiffe://evil.org/spire/agent/x'), Code.InvalidArgument, /not in trust domain/);
      await attest(svc, 'echo', 'banned');
      await ds.banAttestedNode('spiffe://example.org/spire/agent/echo/banned');
      await assert.rejects(attest(svc, 'echo', 'banned'), (e: unknown) => {
        const ce = wireError(e);
        assert.equal(ce.code, Code.PermissionDenied);
        assert.equal(permissionDeniedReasonOf(ce), PermissionDeniedDetails_Reason.AGENT_BANNED);
        return true;
      });
      assert.equal((await ds.getAttestedNode('spiffe://example.org/spire/agent/echo/banned'))?.serialNumber, '');
    });
  });

  it('join_token through the service: the token attests once; the second use is InvalidArgument', async () => {
    await withService(async (svc, ds, clock) => {
      await ds.createJoinToken({ token: 'jt', expiresAt: unixSeconds(clock.now()) + 60 });
      const r = await attest(svc, 'join_token', 'jt');
      assert.equal(r.at(-1)?.step?.case, 'result');
      await rejectsCode(attest(svc, 'join_token', 'jt'), Code.InvalidArgument, /does not exist or has already been used/);
    });
  });
});
