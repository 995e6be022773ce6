// ztwim.server.v1.ServerInfo (ztwim's own, not SPIRE's): this server's version, configured plugins
// and health, for the web console's server page, and when agents last called (agents page). Health is the same check as the health_checks
// listener's ready path, so the page and the probes never disagree.
import type { ServiceImpl } from '@connectrpc/connect';
import type { Clock } from '@ztwim/core';
import type { ServerInfoService } from '@ztwim/proto';
import type { ConfiguredPlugin } from '../config/plugins.ts';
import type { AgentActivity } from './agent-activity.ts';

/** What the ready check found. */
export interface Readiness {
  readonly serving: boolean;
  /** Why not serving. */
  readonly reason?: string;
  /** Last successful datastore read, Unix ms. */
  readonly datastoreLastSuccessMs?: number;
  /** The PostgreSQL host in use; null while away; absent for SQLite. */
  readonly datastoreHost?: string | null;
  /** The read replica in use (ro_connection_string); absent without one. */
  readonly datastoreReadReplicaHost?: string;
}

export interface ServerInfoDeps {
  readonly version: string;
  readonly plugins: readonly ConfiguredPlugin[];
  readonly readiness: () => Promise<Readiness>;
  readonly startedAtMs: number;
  readonly clock: Clock;
  readonly agentActivity: AgentActivity;
}

export function serverInfoService(deps: ServerInfoDeps): ServiceImpl<typeof ServerInfoService> {
  return {
    async getServerInfo() {
      const r = await deps.readiness();
      return {
        version: deps.version,
        plugins: deps.plugins.map((p) => ({ ...p })),
        health: {
          serving: r.serving,
          reason: r.reason ?? '',
          datastoreLastSuccess: BigInt(r.datastoreLastSuccessMs ?? 0),
          datastoreHost: r.datastoreHost ?? '',
          uptimeSeconds: BigInt(Math.max(0, Math.floor((deps.clock.nowMs() - deps.startedAtMs) / 1000))),
        },
      };
    },
    getAgentsLastSeen(req) {
      const seen = deps.agentActivity.lookup(req.agentIds);
      return { lastSeen: Object.fromEntries([...seen].map(([id, ms]) => [id, BigInt(ms)])) };
    },
  };
}
