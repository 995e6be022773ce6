// `ztwim server token generate`, compatible with spire-server's.
import { AgentService, JoinTokenSchema } from '@ztwim/proto';
import { CommandError, type Command } from '../../command.ts';
import { checkedInt32, outputFormat, parseIdToProto, callServer, printProto, serverFlags } from './common.ts';

const generateCommand: Command = {
  name: 'generate',
  goFlagSetName: 'generate',
  summary: 'Generates a join token',
  flags: serverFlags({
    ttl: { kind: 'int', usage: 'Token TTL in seconds', default: 600 },
    spiffeID: { kind: 'string', usage: 'Additional SPIFFE ID to assign the token owner (optional)', arg: 'string' },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const sid = flags.string('spiffeID');
    let agentId: { trustDomain: string; path: string } | undefined;
    let ttl: number;
    try {
      if (sid !== '') agentId = parseIdToProto(sid);
      ttl = checkedInt32(flags.int('ttl'), 'TTL');
    } catch (e) {
      throw new CommandError((e as Error).message);
    }
    const token = await callServer(flags, (conn) => conn.client(AgentService).createJoinToken(agentId === undefined ? { ttl } : { ttl, agentId }));
    await printProto(env, format, JoinTokenSchema, token, () => {
      env.stdout.write(`Token: ${token.value}\n`);
      if (sid === '') env.stdout.write('Warning: Missing SPIFFE ID.\n');
    });
  },
};

export const tokenCommand: Command = {
  name: 'token',
  summary: 'Manage join tokens',
  subcommands: [generateCommand],
};
