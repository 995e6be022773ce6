import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { invalidArgument, randomUuid, spiffeIdFromWire, spiffeIdToWire, unixSeconds, type Clock, type Logger, type Random } from '@ztwim/core';
import { SpiffeId, type TrustDomain } from '@ztwim/spiffe';
import {
  permissionDeniedError,
  PermissionDeniedDetails_Reason,
  toConnectError,
  type AgentService,
  type AgentMask,
  type AttestAgentRequest,
  type AttestAgentResponse,
  type CountAgentsRequest_Filter,
} from '@ztwim/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { AgentSchema, AttestAgentResponseSchema } from '@ztwim/proto';
import type { AttestedNode, AttestedNodeFilter, DataStore } from '../datastore/datastore.ts';
import { parseCsr } from '../ca/csr.ts';
import type { NodeAttestor } from '../attestation/node-attestor.ts';
import { nodeAliasEntry } from '../attestation/join-token.ts';
import type { Authority } from './authority.ts';
import { callerKey } from './caller.ts';
import { grpcCodeResolver } from './errors.ts';
import { pageFromProto, selectorMatchFromProto } from './convert.ts';

export interface AgentServiceDeps {
  readonly dataStore: DataStore;
  readonly trustDomain: TrustDomain;
  readonly authority: Authority;
  readonly attestors: ReadonlyMap<string, NodeAttestor>;
  readonly agentTtlMs: number;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly onAgentAttested?: (agentId: string) => void;
}

type AgentInit = MessageInitShape<typeof AgentSchema>;

function agentToProto(n: AttestedNode, mask: AgentMask | undefined): AgentInit {
  const on = (k: keyof Omit<AgentMask, '$typeName' | '$unknown'>): boolean => mask === undefined || mask[k];
  return {
    id: spiffeIdToWire(n.spiffeId),
    ...(on('attestationType') ? { attestationType: n.attestationType } : {}),
    ...(on('x509svidSerialNumber') ? { x509svidSerialNumber: n.serialNumber } : {}),
    ...(on('x509svidExpiresAt') ? { x509svidExpiresAt: BigInt(n.expiresAt) } : {}),
    ...(on('selectors') ? { selectors: n.selectors.map((s) => ({ type: s.type, value: s.value })) } : {}),
    ...(on('banned') ? { banned: n.serialNumber === '' } : {}),
    ...(on('canReattest') ? { canReattest: n.canReattest } : {}),
  };
}

/** Parses SPIRE's `by_expires_before` layout `2006-01-02 15:04:05 -0700 -07` (also RFC 3339). */
function parseExpiresBefore(s: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})(?: \S+)?$/.exec(s);
  const d = m ? new Date(`${m[1]}T${m[2]}${m[3]}:${m[4]}`) : new Date(s);
  if (Number.isNaN(d.getTime())) throw invalidArgument(`failed to parse expires before filter "${s}"`);
  return unixSeconds(d);
}

function agentFilterFromProto(f: Omit<CountAgentsRequest_Filter, '$typeName' | '$unknown'> | undefined): AttestedNodeFilter {
  if (f === undefined) return {};
  const out: { -readonly [K in keyof AttestedNodeFilter]: AttestedNodeFilter[K] } = {};
  if (f.byAttestationType !== '') out.byAttestationType = f.byAttestationType;
  if (f.bySelectorMatch !== undefined) out.bySelectorMatch = selectorMatchFromProto(f.bySelectorMatch, 'selectors filter');
  if (f.byBanned !== undefined) out.byBanned = f.byBanned;
  if (f.byCanReattest !== undefined) out.byCanReattest = f.byCanReattest;
  if (f.byExpiresBefore !== '') out.byExpiresBefore = parseExpiresBefore(f.byExpiresBefore);
  return out;
}

/** SPIRE's Agent service (spire.api.server.agent.v1): admin calls, attestation, renewal, join tokens. */
export function agentService(deps: AgentServiceDeps): ServiceImpl<typeof AgentService> {
  const ds = deps.dataStore;
  const td = deps.trustDomain;

  const agentIdFrom = (id: Parameters<typeof spiffeIdFromWire>[0]): string => {
    let s: SpiffeId;
    try {
      s = spiffeIdFromWire(id, 'SPIFFE ID');
    } catch (e) {
      throw invalidArgument(`invalid agent ID: ${(e as Error).message}`);
    }
    if (!s.memberOf(td) || !s.path.startsWith('/spire/agent/')) throw invalidArgument(`invalid agent ID: "${s}" is not an agent in trust domain "${td.name}"`);
    return s.toString();
  };
  const getNode = async (id: string): Promise<AttestedNode> => {
    const n = await ds.getAttestedNode(id);
    if (n === null) throw new ConnectError('agent not found', Code.NotFound);
    return n;
  };

  // Both callers refuse an empty CSR first, each with SPIRE's message for its RPC.
  const signAgent = async (csr: Uint8Array, agentId: SpiffeId) => {
    const parsed = parseCsr(csr);
    return deps.authority.signX509Svid({ publicKey: parsed.publicKey, spiffeId: agentId, ttlMs: deps.agentTtlMs });
  };

  return {
    async countAgents(req) {
      return { count: await ds.countAttestedNodes(agentFilterFromProto(req.filter)) };
    },

    async listAgents(req) {
      if (req.pageSize < 0) throw invalidArgument('page size must not be negative');
      const r = await ds.listAttestedNodes(agentFilterFromProto(req.filter), pageFromProto(req));
      return { agents: r.nodes.map((n) => agentToProto(n, req.outputMask)), nextPageToken: r.nextPageToken };
    },

    async getAgent(req) {
      return agentToProto(await getNode(agentIdFrom(req.id)), req.outputMask);
    },

    async deleteAgent(req) {
      const id = agentIdFrom(req.id);
      await getNode(id);
      await ds.deleteAttestedNode(id);
      deps.log.info({ agent_id: id }, 'Agent deleted');
      return {};
    },

    async banAgent(req) {
      const id = agentIdFrom(req.id);
      await getNode(id);
      await ds.banAttestedNode(id);
      deps.log.info({ agent_id: id }, 'Agent banned');
      return {};
    },

    async *attestAgent(requests: AsyncIterable<AttestAgentRequest>): AsyncIterable<MessageInitShape<typeof AttestAgentResponseSchema>> {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done === true) throw invalidArgument('malformed param: missing params');
      const step = first.value.step;
      if (step.case !== 'params') throw invalidArgument('malformed param: missing params');
      const data = step.value.data;
      const csr = step.value.params?.csr;
      if (data === undefined) throw invalidArgument('malformed param: missing attestation data');
      if (data.type === '') throw invalidArgument('malformed attestation data: missing type');
      if (data.payload.length === 0) throw invalidArgument('malformed attestation data: missing payload');
      if (csr === undefined || csr.length === 0) throw invalidArgument('malformed param: missing X509-SVID params');
      const attestor = deps.attestors.get(data.type);
      if (attestor === undefined)
        throw new ConnectError(`error getting node attestor: could not find node attestor type "${data.type}"`, Code.FailedPrecondition);

      // Challenge rounds: the attestor pulls answers through this queue.
      const outbox: Array<MessageInitShape<typeof AttestAgentResponseSchema>> = [];
      let wake: (() => void) | undefined;
      const challenge = async (c: Uint8Array): Promise<Uint8Array> => {
        outbox.push({ step: { case: 'challenge', value: c } });
        wake?.();
        const r = await it.next();
        if (r.done === true || r.value.step.case !== 'challengeResponse') throw invalidArgument('expected a challenge response');
        return r.value.step.value;
      };
      const result = attestor.attest(data.payload, challenge);
      let settled = false;
      result.then(
        () => (settled = true),
        () => (settled = true),
      );
      for (;;) {
        while (outbox.length > 0) yield outbox.shift() as MessageInitShape<typeof AttestAgentResponseSchema>;
        if (settled) break;
        await Promise.race([result.catch(() => undefined), new Promise<void>((r) => (wake = r))]);
      }
      // A streaming handler's errors bypass the unary error-mapping interceptor: map the
      // attestor's typed error here so the agent sees its code and message (not Internal).
      const attested = await result.catch((e: unknown) => {
        throw toConnectError(e, grpcCodeResolver);
      });
      const agentId = attested.agentId;
      if (!agentId.memberOf(td)) throw invalidArgument(`failed to attest: agent ID "${agentId}" is not in trust domain "${td.name}"`);
      if (agentId.path === '/spire/server') throw new ConnectError('failed to attest: agent ID cannot be the server ID', Code.Internal);
      const existing = await ds.getAttestedNode(agentId.toString());
      if (existing !== null && existing.serialNumber === '')
        throw permissionDeniedError('failed to attest: agent is banned', PermissionDeniedDetails_Reason.AGENT_BANNED);
      const svid = await signAgent(csr, agentId);
      const serial = svid.serial.toString(10);
      const expiresAt = unixSeconds(svid.notAfter);
      if (existing === null) {
        await ds.createAttestedNode({
          spiffeId: agentId.toString(),
          attestationType: data.type,
          serialNumber: serial,
          expiresAt,
          canReattest: attested.canReattest,
        });
      } else {
        await ds.updateAttestedNode(agentId.toString(), {
          serialNumber: serial,
          expiresAt,
          newSerialNumber: '',
          newExpiresAt: 0,
          canReattest: attested.canReattest,
          attestationType: data.type,
        });
      }
      // Replaced, deduplicated by the store (DataStore.setNodeSelectors; SPIRE's selector.Dedupe).
      await ds.setNodeSelectors(agentId.toString(), attested.selectors);
      deps.log.info({ agent_id: agentId.toString(), node_attestor_type: data.type }, 'Agent attestation request completed');
      deps.onAgentAttested?.(agentId.toString());
      yield {
        step: {
          case: 'result',
          value: {
            svid: { certChain: svid.certChain, id: spiffeIdToWire(agentId), expiresAt: BigInt(expiresAt) },
            reattestable: attested.canReattest,
          },
        },
      };
    },

    async renewAgent(req, ctx: HandlerContext) {
      const caller = ctx.values.get(callerKey);
      const agentId = caller.agentId;
      if (agentId === undefined) throw new ConnectError('caller is not an agent', Code.PermissionDenied);
      const node = await getNode(agentId.toString());
      if (node.canReattest) throw permissionDeniedError('agent must reattest instead of renewing', PermissionDeniedDetails_Reason.AGENT_MUST_REATTEST);
      const csr = req.params?.csr;
      if (csr === undefined || csr.length === 0) throw invalidArgument('missing CSR');
      const svid = await signAgent(csr, agentId);
      await ds.updateAttestedNode(agentId.toString(), { newSerialNumber: svid.serial.toString(10), newExpiresAt: unixSeconds(svid.notAfter) });
      return { svid: { certChain: svid.certChain, id: spiffeIdToWire(agentId), expiresAt: BigInt(unixSeconds(svid.notAfter)) } };
    },

    async createJoinToken(req) {
      if (req.ttl < 1) throw invalidArgument('ttl is required, you must provide one');
      const token = req.token === '' ? randomUuid(deps.random) : req.token;
      let joinId: SpiffeId;
      try {
        joinId = SpiffeId.fromSegments(td, 'spire', 'agent', 'join_token', token);
      } catch (e) {
        throw invalidArgument(`invalid join token: ${(e as Error).message}`);
      }
      const expiresAt = unixSeconds(deps.clock.now()) + req.ttl;
      if (req.agentId !== undefined) {
        let workload: SpiffeId;
        try {
          workload = spiffeIdFromWire(req.agentId, 'SPIFFE ID');
        } catch (e) {
          throw invalidArgument(`invalid agent ID: ${(e as Error).message}`);
        }
        // SPIRE checks it as a workload ID (api.TrustDomainWorkloadIDFromProto): an alias entry
        // for the trust domain's own ID or a reserved /spire ID (the server's) is refused.
        if (!workload.memberOf(td)) throw invalidArgument(`invalid agent ID: "${workload}" is not a member of trust domain "${td.name}"`);
        if (workload.isTrustDomainId()) throw invalidArgument(`invalid agent ID: "${workload}" is not a workload in trust domain "${td.name}"; path is empty`);
        if (workload.path === '/spire' || workload.path.startsWith('/spire/'))
          throw invalidArgument(`invalid agent ID: "${workload}" is not a workload in trust domain "${td.name}"; path is in the reserved namespace`);
        await ds.createJoinToken({ token, expiresAt });
        await ds.createEntry(nodeAliasEntry(joinId.toString(), workload.toString()));
      } else {
        await ds.createJoinToken({ token, expiresAt });
      }
      return { value: token, expiresAt: BigInt(expiresAt) };
    },

    async postStatus() {
      throw new ConnectError('unimplemented', Code.Unimplemented);
    },
  };
}

export type { AttestAgentResponse };
