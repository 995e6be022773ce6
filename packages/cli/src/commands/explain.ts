// `ztwim explain`: why a workload gets (or does not get) an identity from an agent. Reads the
// agent and every registration entry over the server's admin socket, takes the workload's
// selectors from -selector flags or from a PID on this host (the unix workload attestor, as the
// agent runs it), and prints the entries that match, the nearest ones with the selectors they lack,
// and the matching entries out of the agent's reach (@ztwim/console's explain.ts, shared with the console's Explain page).
import { AgentService, EntryService, type Agent } from '@ztwim/proto';
import { CommandError, type Command } from '../command.ts';
import type { Env } from '../env.ts';
import type { Flags } from '../flags.ts';
import { explain, explainEntryOf, formatExplanation, type ExplainEntry, type ExplainSelector } from '@ztwim/console/explain';
import { idToString } from '../printer/entry.ts';
import { withServer, type ServerConnection } from './server/client.ts';
import { outputFormat, parseIdToProto, parseSelector, serverFlags } from './server/common.ts';

const PAGE_SIZE = 1000;

async function allEntries(conn: ServerConnection): Promise<ExplainEntry[]> {
  const out: ExplainEntry[] = [];
  let pageToken = '';
  for (;;) {
    const resp = await conn.rpc(() => conn.client(EntryService).listEntries({ pageSize: PAGE_SIZE, pageToken }), 'error fetching entries: ');
    for (const e of resp.entries) out.push(explainEntryOf(e));
    pageToken = resp.nextPageToken;
    if (pageToken === '') return out;
  }
}

/** The agent named by -agentID, or the only attested agent when the flag is not given. */
async function pickAgent(conn: ServerConnection, flagValue: string): Promise<Agent> {
  if (flagValue !== '') {
    let id: { trustDomain: string; path: string };
    try {
      id = parseIdToProto(flagValue);
    } catch (e) {
      throw new CommandError(`-agentID: ${(e as Error).message}`);
    }
    return conn.rpc(() => conn.client(AgentService).getAgent({ id }), `agent ${flagValue}: `);
  }
  const resp = await conn.rpc(() => conn.client(AgentService).listAgents({ pageSize: 11 }));
  const [only, ...more] = resp.agents;
  if (only === undefined) throw new CommandError('no agent is attested to this server: start one, or name one with -agentID');
  if (more.length > 0) {
    const shown = resp.agents.slice(0, 10).map((a) => `  ${idToString(a.id)}`);
    const extra = resp.nextPageToken === '' ? '' : '\n  ...';
    throw new CommandError(`several agents are attested; name one with -agentID:\n${shown.join('\n')}${extra}`);
  }
  return only;
}

/** The unix workload attestor's selectors for a process on this host. */
async function pidSelectors(pid: number, discoverWorkloadPath: boolean): Promise<ExplainSelector[]> {
  const { UnixWorkloadAttestor } = await import('@ztwim/agent');
  try {
    return await new UnixWorkloadAttestor({ discoverWorkloadPath }).attest(pid);
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
    throw new CommandError(`-pid ${pid}: ${(e as Error).message}${cause}`);
  }
}

function workloadSelectorsFromFlags(flags: Flags): ExplainSelector[] {
  return flags.list('selector').map((s) => {
    try {
      return parseSelector(s);
    } catch (e) {
      throw new CommandError(`-selector ${JSON.stringify(s)}: ${(e as Error).message}`);
    }
  });
}

export const explainCommand: Command = {
  name: 'explain',
  summary: 'Explain which identity a workload gets from an agent, and which selectors the nearest entries lack',
  description: [
    'Give the workload as selectors (-selector unix:uid:1000, repeatable) or as a process on this',
    'host (-pid N: the unix workload attestor runs on it, as the agent would). The entries the',
    "agent is authorised for come from the server's admin API (-socketPath).",
  ].join('\n'),
  flags: serverFlags({
    agentID: { kind: 'string', usage: 'SPIFFE ID of the agent the workload talks to (default: the only attested agent)', arg: 'string' },
    selector: { kind: 'list', usage: 'A workload selector, type:value (repeatable)', arg: 'value' },
    pid: { kind: 'int', usage: 'A process on this host: its unix workload selectors are added', default: 0 },
    discoverWorkloadPath: { kind: 'bool', usage: "With -pid: add the path and sha256 selectors (the agent's discover_workload_path)" },
    nearest: { kind: 'int', usage: 'How many of the nearest non-matching entries to show', default: 5 },
  }),
  async run(flags: Flags, env: Env) {
    const format = outputFormat(flags);
    const workload = workloadSelectorsFromFlags(flags);
    const pid = flags.int('pid');
    if (pid < 0) throw new CommandError('-pid must be a positive process ID');
    if (pid > 0) workload.push(...(await pidSelectors(pid, flags.bool('discoverWorkloadPath'))));
    if (workload.length === 0) throw new CommandError('give the workload with -selector type:value or -pid N');
    const nearest = flags.int('nearest');
    if (nearest < 0) throw new CommandError('-nearest must be 0 or more');

    await withServer(flags.string('socketPath'), async (conn) => {
      const agent = await pickAgent(conn, flags.string('agentID'));
      const nodeSelectors = agent.selectors.map((s) => ({ type: s.type, value: s.value }));
      const entries = await allEntries(conn);
      const x = explain({
        agentId: idToString(agent.id),
        nodeSelectors,
        workloadSelectors: workload,
        entries,
        now: Math.floor(Date.now() / 1000),
        nearest,
      });
      if (format === 'json') env.stdout.write(`${JSON.stringify({ ...x, workloadSelectors: workload, agentSelectors: nodeSelectors }, null, 2)}\n`);
      else env.stdout.write(formatExplanation(x, workload, nodeSelectors));
    });
  },
};
