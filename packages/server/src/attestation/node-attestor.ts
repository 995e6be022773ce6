import type { SpiffeId } from '@ztwim/spiffe';

export interface Selector {
  readonly type: string;
  readonly value: string;
}

/** Sends a challenge to the attesting agent and resolves with its answer. */
export type ChallengeFn = (challenge: Uint8Array) => Promise<Uint8Array>;

export interface NodeAttestationResult {
  readonly agentId: SpiffeId;
  /** Selectors describing the node; their type is the attestor's name. */
  readonly selectors: readonly Selector[];
  readonly canReattest: boolean;
}

/**
 * A server-side node attestor (SPIRE's NodeAttestor plugin): checks the agent's evidence,
 * optionally through challenge/response rounds, and names the agent. A new attestor
 * is a new file implementing this interface, listed where server.ts builds its attestors.
 */
export interface NodeAttestor {
  readonly name: string;
  attest(payload: Uint8Array, challenge: ChallengeFn): Promise<NodeAttestationResult>;
}
