// `ztwim server agent list|show|evict|ban|count`, compatible with spire-server's.
import { create, type MessageShape } from '@bufbuild/protobuf';
import { EmptySchema } from '@bufbuild/protobuf/wkt';
import { AgentService, AgentSchema, CountAgentsResponseSchema, ListAgentsResponseSchema, type Agent, type SelectorMatch_MatchBehavior } from '@ztwim/proto';
import { CommandError, type Command } from '../../command.ts';
import type { Flags, FlagSpecs } from '../../flags.ts';
import { formatAgentCount, formatAgentList, formatAgentShow } from '../../printer/agent.ts';
import { idToString } from '../../printer/entry.ts';
import { goQuote } from '../../printer/go-format.ts';
import { formatStructJson } from '../../printer/proto-json.ts';
import { rpcErrorText, withServer, type ServerConnection } from './client.ts';
import { goParseTimeError } from './go-time-parse.ts';
import { outputFormat, parseIdToProto, parseSelector, callServer, printProto, serverFlags } from './common.ts';

const FILTER_FLAGS: FlagSpecs = {
  selector: { kind: 'list', usage: 'A colon-delimited type:value selector. Can be used more than once', arg: 'value' },
  attestationType: { kind: 'string', usage: 'Filter by attestation type, like join_token or x509pop.', arg: 'string' },
  canReattest: {
    kind: 'string',
    usage: "Filter based on string received, 'true': agents that can reattest, 'false': agents that can't reattest, other value will return all.",
    arg: 'value',
  },
  banned: {
    kind: 'string',
    usage: "Filter based on string received, 'true': banned agents, 'false': not banned agents, other value will return all.",
    arg: 'value',
  },
  expiresBefore: { kind: 'string', usage: 'Filter by expiration time (format: "2006-01-02 15:04:05 -0700 -07")', arg: 'string' },
  matchSelectorsOn: {
    kind: 'string',
    usage: 'The match mode used when filtering by selectors. Options: exact, any, superset and subset',
    default: 'superset',
    arg: 'string',
  },
};

const MATCH: Record<string, number> = { exact: 0, subset: 1, superset: 2, any: 3 };

interface AgentFilterInit {
  bySelectorMatch?: { selectors: { type: string; value: string }[]; match: SelectorMatch_MatchBehavior };
  byExpiresBefore?: string;
  byAttestationType?: string;
  byCanReattest?: boolean;
  byBanned?: boolean;
}

function triState(v: string): boolean | undefined {
  return v === 'true' ? true : v === 'false' ? false : undefined;
}

function buildFilter(flags: Flags): AgentFilterInit {
  const filter: AgentFilterInit = {};
  const sels = flags.list('selector');
  if (sels.length > 0) {
    const match = MATCH[flags.string('matchSelectorsOn')];
    if (match === undefined) throw new CommandError('unsupported match behavior');
    const selectors = sels.map((s) => {
      try {
        return parseSelector(s);
      } catch (e) {
        throw new CommandError(`error parsing selector ${goQuote(s)}: ${(e as Error).message}`);
      }
    });
    filter.bySelectorMatch = { selectors, match: match as SelectorMatch_MatchBehavior };
  }
  const eb = flags.string('expiresBefore');
  if (eb !== '') {
    const err = goParseTimeError(eb);
    if (err !== undefined) throw new CommandError(`date is not valid: ${err}`);
    filter.byExpiresBefore = eb;
  }
  if (flags.string('attestationType') !== '') filter.byAttestationType = flags.string('attestationType');
  const cr = triState(flags.string('canReattest'));
  if (cr !== undefined) filter.byCanReattest = cr;
  const b = triState(flags.string('banned'));
  if (b !== undefined) filter.byBanned = b;
  return filter;
}

const listCommand: Command = {
  name: 'list',
  summary: 'Lists attested agents and their SPIFFE IDs',
  flags: serverFlags(FILTER_FLAGS),
  async run(flags, env) {
    const format = outputFormat(flags);
    const filter = buildFilter(flags);
    await withServer(flags.string('socketPath'), async (conn) => {
      const agents: Agent[] = [];
      let pageToken = '';
      for (;;) {
        const resp = await conn.rpc(() => conn.client(AgentService).listAgents({ pageSize: 1000, pageToken, filter }));
        agents.push(...resp.agents);
        pageToken = resp.nextPageToken;
        if (pageToken === '') break;
      }
      const out = create(ListAgentsResponseSchema, { agents });
      await printProto(env, format, ListAgentsResponseSchema, out, () => {
        env.stdout.write(formatAgentList(agents, env.vars['TZ']));
      });
    });
  },
};

const countCommand: Command = {
  name: 'count',
  summary: 'Count attested agents',
  flags: serverFlags(FILTER_FLAGS),
  async run(flags, env) {
    const format = outputFormat(flags);
    const filter = buildFilter(flags);
    const resp = await callServer(flags, (conn) => conn.client(AgentService).countAgents({ filter }));
    await printProto(env, format, CountAgentsResponseSchema, resp, () => {
      env.stdout.write(formatAgentCount(resp.count));
    });
  },
};

function agentIdFlag(what: string): FlagSpecs {
  return { spiffeID: { kind: 'string', usage: `The SPIFFE ID of the agent to ${what} (agent identity)`, arg: 'string' } };
}

function requiredAgentId(flags: Flags): { trustDomain: string; path: string } {
  const s = flags.string('spiffeID');
  if (s === '') throw new CommandError('a SPIFFE ID is required');
  try {
    return parseIdToProto(s);
  } catch (e) {
    throw new CommandError((e as Error).message);
  }
}

const showCommand: Command = {
  name: 'show',
  summary: 'Shows the details of an attested agent given its SPIFFE ID',
  flags: serverFlags(agentIdFlag('show')),
  async run(flags, env) {
    const format = outputFormat(flags);
    const id = requiredAgentId(flags);
    const agent = await callServer(flags, (conn) => conn.client(AgentService).getAgent({ id }));
    await printProto(env, format, AgentSchema, agent, () => {
      env.stdout.write(formatAgentShow(agent, env.vars['TZ']));
    });
  },
};

/** `agent evict` / `agent ban`: one call on the agent `-spiffeID` names, then `done` on success. */
function agentActionCommand(
  name: 'evict' | 'ban',
  summary: string,
  call: (conn: ServerConnection, id: { trustDomain: string; path: string }) => Promise<MessageShape<typeof EmptySchema>>,
  done: string,
): Command {
  return {
    name,
    summary,
    flags: serverFlags(agentIdFlag(name)),
    async run(flags, env) {
      const format = outputFormat(flags);
      const id = requiredAgentId(flags);
      const resp = await callServer(flags, (conn) => call(conn, id));
      await printProto(env, format, EmptySchema, resp, () => {
        env.stdout.write(done);
      });
    },
  };
}

const evictCommand = agentActionCommand(
  'evict',
  'Evicts an attested agent given its SPIFFE ID',
  (conn, id) => conn.client(AgentService).deleteAgent({ id }),
  'Agent evicted successfully\n',
);

const banCommand = agentActionCommand(
  'ban',
  'Ban an attested agent given its SPIFFE ID',
  (conn, id) => conn.client(AgentService).banAgent({ id }),
  'Agent banned successfully\n',
);

interface ExpiredAgent {
  agent_id: string;
  deleted: boolean;
  error?: string;
}

const purgeCommand: Command = {
  name: 'purge',
  summary: 'Purge expired agents that were attested using a non-TOFU security model based on a given time',
  flags: serverFlags({
    expiredFor: {
      kind: 'duration',
      usage: "Amount of time that has passed since the agent's SVID has expired. It is used to determine which agents to purge.",
      default: 30 * 24 * 3600,
    },
    dryRun: { kind: 'bool', usage: 'Indicates that the command will not perform any action, but will print the agents that would be purged.' },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const dryRun = flags.bool('dryRun');
    const expiredForMs = flags.duration('expiredFor') * 1000;
    await withServer(flags.string('socketPath'), async (conn) => {
      const resp = await conn.rpc(
        () => conn.client(AgentService).listAgents({ filter: { byCanReattest: true }, outputMask: { x509svidExpiresAt: true } }),
        'failed to list agents: ',
      );
      const expired: ExpiredAgent[] = [];
      for (const a of resp.agents) {
        const id = idToString(a.id);
        if (Date.now() - Number(a.x509svidExpiresAt) * 1000 > expiredForMs) {
          const r: ExpiredAgent = { agent_id: id, deleted: false };
          if (!dryRun) {
            try {
              await conn.client(AgentService).deleteAgent({ id: { trustDomain: a.id?.trustDomain ?? '', path: a.id?.path ?? '' } });
              r.deleted = true;
            } catch (e) {
              r.error = rpcErrorText(e, conn.socketPath);
            }
          }
          expired.push(r);
        }
      }
      if (format === 'json') {
        env.stdout.write(formatStructJson([{ expired_agents: expired.map((x) => ({ ...x })) }]));
        return;
      }
      if (expired.length === 0) {
        env.stdout.write('No agents to purge.\n');
        return;
      }
      env.stdout.write(`Found ${expired.length} expired ${expired.length === 1 ? 'agent' : 'agents'}\n\n`);
      const line = (label: string, v: string): string => `${label.padEnd(18)}: ${v}\n`;
      if (dryRun) {
        env.stdout.write('\nAgents that can be purged:\n');
        for (const r of expired) env.stdout.write(line('SPIFFE ID', r.agent_id));
        return;
      }
      const purged = expired.filter((r) => r.deleted);
      const notPurged = expired.filter((r) => !r.deleted);
      if (purged.length > 0) {
        env.stdout.write('Agents purged:\n');
        for (const r of purged) env.stdout.write(line('SPIFFE ID', r.agent_id));
      }
      if (notPurged.length > 0) {
        env.stdout.write('Agents not purged:\n');
        for (const r of notPurged) env.stdout.write(line('SPIFFE ID', r.agent_id) + line('Error', r.error ?? ''));
      }
    });
  },
};

export const agentCommand: Command = {
  name: 'agent',
  summary: 'Manage attested agents',
  subcommands: [banCommand, countCommand, evictCommand, listCommand, purgeCommand, showCommand],
};
