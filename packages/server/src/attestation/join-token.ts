import { invalidArgument, unixSeconds, type Clock } from '@ztwim/core';
import { SpiffeId, type TrustDomain } from '@ztwim/spiffe';
import type { DataStore, NewEntry } from '../datastore/datastore.ts';
import type { NodeAttestationResult, NodeAttestor } from './node-attestor.ts';

/** The agent ID a join token attests to: `spiffe://<td>/spire/agent/join_token/<token>`. */
export function joinTokenAgentId(td: TrustDomain, token: string): SpiffeId {
  return SpiffeId.fromSegments(td, 'spire', 'agent', 'join_token', token);
}

/**
 * The entry `spire-server token generate -spiffeID ALIAS` registers: ALIAS parented to the agent
 * (a `spiffe_id` selector naming it), so entries parented to ALIAS are served by that agent.
 */
export function nodeAliasEntry(agentId: string, aliasId: string): NewEntry {
  return { spiffeId: aliasId, parentId: agentId, selectors: [{ type: 'spiffe_id', value: agentId }] };
}

/** SPIRE's join_token attestation: single use, expiring; deleted before the expiry check. */
export class JoinTokenAttestor implements NodeAttestor {
  readonly name = 'join_token';
  private readonly ds: DataStore;
  private readonly td: TrustDomain;
  private readonly clock: Clock;

  constructor(deps: { dataStore: DataStore; trustDomain: TrustDomain; clock: Clock }) {
    this.ds = deps.dataStore;
    this.td = deps.trustDomain;
    this.clock = deps.clock;
  }

  async attest(payload: Uint8Array): Promise<NodeAttestationResult> {
    const token = Buffer.from(payload).toString('utf8');
    if (token === '') throw invalidArgument('failed to attest: join token is empty');
    const found = await this.ds.takeJoinToken(token);
    if (found === null) throw invalidArgument('failed to attest: join token does not exist or has already been used');
    if (found.expiresAt < unixSeconds(this.clock.now())) throw invalidArgument('failed to attest: join token expired');
    let agentId: SpiffeId;
    try {
      agentId = joinTokenAgentId(this.td, token);
    } catch {
      throw invalidArgument('failed to attest: join token is not a valid path segment');
    }
    return { agentId, selectors: [], canReattest: false };
  }
}
