// When each agent last called this server (ztwim's own: SPIRE's Agent type has no such field),
// for the console's agents page. An interceptor placed after authorization records the caller's
// agent ID on every call an attested agent makes (sync, renewal, SVID signing); the map lives in
// memory, so it says what this server saw since it started (another server of an HA group sees
// its own agents' calls). An evicted agent's ID stays until the server restarts: its last call is
// still when it was last seen.
import type { Interceptor } from '@connectrpc/connect';
import { invalidArgument, type Clock } from '@ztwim/core';
import { callerKey } from './caller.ts';

/** Most agent IDs one GetAgentsLastSeen call may ask about (a console page is at most 1,000). */
export const MAX_LAST_SEEN_IDS = 1000;

export class AgentActivity {
  readonly #lastSeen = new Map<string, number>();

  record(agentId: string, ms: number): void {
    this.#lastSeen.set(agentId, ms);
  }

  /** Unix ms of the agent's last call, or undefined if not seen since start. */
  lastSeen(agentId: string): number | undefined {
    return this.#lastSeen.get(agentId);
  }

  /** The last-seen times of those of `agentIds` seen since start (InvalidArgument past MAX_LAST_SEEN_IDS). */
  lookup(agentIds: readonly string[]): Map<string, number> {
    if (agentIds.length > MAX_LAST_SEEN_IDS) throw invalidArgument(`agent_ids: ${agentIds.length} IDs, at most ${MAX_LAST_SEEN_IDS}`);
    const out = new Map<string, number>();
    for (const id of agentIds) {
      const ms = this.#lastSeen.get(id);
      if (ms !== undefined) out.set(id, ms);
    }
    return out;
  }
}

/** Records the agent behind each call that authorization let through as an attested agent. */
export function agentActivityInterceptor(activity: AgentActivity, clock: Clock): Interceptor {
  return (next) => async (req) => {
    const agentId = req.contextValues.get(callerKey).agentId;
    if (agentId !== undefined) activity.record(agentId.toString(), clock.nowMs());
    return next(req);
  };
}
