// The agent of `ztwim up`: attested with a fresh join token, given the node alias
// spiffe://<td>/host (as `spire-server token generate -spiffeID spiffe://<td>/host` does), and
// attested again, with a new token and the alias moved to its new ID, whenever the server stops
// knowing it (`server agent evict`, a wiped datastore). Entries parented to the alias are
// therefore served whatever the agent's ID.
import { isAgentNotAttested, startAgent, type AgentConfig, type RunningAgent } from '@ztwim/agent';
import { cryptoRandom, isZtwimError, randomUuid, systemClock, unixSeconds, type Logger } from '@ztwim/core';
import { nodeAliasEntry, SimilarEntryError, type RunningServer } from '@ztwim/server';
import { SpiffeId, type TrustDomain } from '@ztwim/spiffe';

/** The node alias `ztwim up` gives its agent: `spiffe://<td>/host`. */
export function hostAlias(td: TrustDomain): string {
  return SpiffeId.fromSegments(td, 'host').toString();
}

export interface SupervisedAgent {
  /** The running agent's ID (changes on re-attestation). */
  readonly agentId: string;
  readonly socketPath: string;
  readonly metricsPort: number | undefined;
  /** Rejects when the agent stops for a reason re-attesting cannot mend (banned, ...). */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

export interface SuperviseAgentOptions {
  readonly server: RunningServer;
  readonly trustDomain: TrustDomain;
  /** The agent config for a join token. */
  readonly config: (joinToken: string) => AgentConfig;
  readonly log: Logger;
  /** Join token lifetime (s). */
  readonly tokenTtlSeconds?: number;
}

async function ignoreExisting(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof SimilarEntryError) && !isZtwimError(e, 'ERR_ALREADY_EXISTS')) throw e;
  }
}

export async function superviseAgent(o: SuperviseAgentOptions): Promise<SupervisedAgent> {
  const ds = o.server.dataStore;
  const alias = hostAlias(o.trustDomain);
  const start = async (): Promise<RunningAgent> => {
    // A fresh single-use token each start; an agent with a valid stored SVID does not use it.
    const token = randomUuid(cryptoRandom);
    await ds.createJoinToken({ token, expiresAt: unixSeconds(systemClock.now()) + (o.tokenTtlSeconds ?? 600) });
    const agent = await startAgent(o.config(token), { logger: o.log, logStop: false });
    try {
      await ignoreExisting(ds.createEntry(nodeAliasEntry(agent.agentId, alias)));
    } catch (e) {
      await agent.close();
      throw e;
    }
    return agent;
  };
  /** Deletes the alias entries of agent IDs this process no longer runs. */
  const dropAlias = async (agentId: string): Promise<void> => {
    const { entries } = await ds.listEntries({ bySpiffeId: alias, byParentId: agentId });
    for (const e of entries) await ds.deleteEntry(e.id).catch(() => undefined);
  };

  let agent = await start();
  let closed = false;
  const done = (async (): Promise<void> => {
    for (;;) {
      try {
        await agent.done;
        return;
      } catch (e) {
        if (closed || !isAgentNotAttested(e)) throw e;
      }
      const old = agent.agentId;
      agent = await start();
      await dropAlias(old);
      o.log.warn(
        { old_agent_id: old, agent_id: agent.agentId, node_alias: alias },
        'Agent no longer attested (evicted, or the datastore lost it); re-attested with a new join token and moved the node alias to it',
      );
    }
  })();
  done.catch(() => undefined);
  return {
    get agentId() {
      return agent.agentId;
    },
    get socketPath() {
      return agent.socketPath;
    },
    get metricsPort() {
      return agent.metricsPort;
    },
    done,
    async close() {
      closed = true;
      await agent.close();
      await done.catch(() => undefined);
    },
  };
}
