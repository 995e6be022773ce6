// `ztwim server healthcheck`, compatible with spire-server's.
import { HealthCheckResponse_ServingStatus, HealthService } from '@ztwim/proto';
import { CommandError, type Command } from '../../command.ts';
import { rpcErrorText, withServer } from './client.ts';
import { serverFlags } from './common.ts';

const STATUS_NAMES: Record<number, string> = { 0: 'UNKNOWN', 1: 'SERVING', 2: 'NOT_SERVING', 3: 'SERVICE_UNKNOWN' };

export const healthcheckCommand: Command = {
  name: 'healthcheck',
  summary: 'Determines server health status',
  flags: serverFlags(
    {
      shallow: { kind: 'bool', usage: 'Perform a less stringent health check' },
      verbose: { kind: 'bool', usage: 'Print verbose information' },
    },
    false,
  ),
  async run(flags, env) {
    const verbose = flags.bool('verbose');
    if (verbose) env.stdout.write('Checking server health...\n');
    await withServer(flags.string('socketPath'), async (conn) => {
      let status: number;
      try {
        status = (await conn.client(HealthService).check({ service: '' })).status;
      } catch (e) {
        if (verbose) env.stderr.write(`Failed to check health: ${rpcErrorText(e, conn.socketPath)}\n`);
        throw new CommandError('server is unhealthy: unable to determine health');
      }
      if (status !== HealthCheckResponse_ServingStatus.SERVING) {
        throw new CommandError(`server is unhealthy: server returned status "${STATUS_NAMES[status] ?? String(status)}"`);
      }
    });
    env.stdout.write('Server is healthy.\n');
  },
};
