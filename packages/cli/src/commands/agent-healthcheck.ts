// `ztwim agent healthcheck`, compatible with spire-agent's: grpc.health.v1 Check on the Workload
// API socket; SERVING is healthy, anything else (no answer included) exits 1.
import { resolve } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { HealthCheckResponse_ServingStatus, HealthService, createUnixGrpcTransport } from '@ztwim/proto';
import type { Command } from '../command.ts';
import { println } from '../env.ts';
import { rpcErrorText } from './server/client.ts';
import { DEFAULT_AGENT_SOCKET } from './agent-api.ts';

const STATUS_NAMES: Record<number, string> = { 0: 'UNKNOWN', 1: 'SERVING', 2: 'NOT_SERVING', 3: 'SERVICE_UNKNOWN' };

/** spire-agent dials without a deadline; ours bounds a hung socket (no answer = unable to determine). */
const CHECK_TIMEOUT_MS = 10_000;

export const agentHealthcheckCommand: Command = {
  name: 'healthcheck',
  summary: 'Determines agent health status',
  goCli: true,
  goFlagSetName: 'health',
  flags: {
    shallow: { kind: 'bool', usage: 'Perform a less stringent health check' },
    socketPath: { kind: 'string', usage: 'Path to the SPIRE Agent API socket', default: DEFAULT_AGENT_SOCKET, arg: 'PATH' },
    verbose: { kind: 'bool', usage: 'Print verbose information' },
  },
  async run(f, env) {
    const verbose = f.bool('verbose');
    // spire-agent dials the absolute path (and names it so in errors).
    const socketPath = resolve(env.cwd, f.string('socketPath') === '' ? DEFAULT_AGENT_SOCKET : f.string('socketPath'));
    if (verbose) println(env.stdout, 'Checking agent health...');
    let status: number;
    const transport = createUnixGrpcTransport(socketPath);
    try {
      status = (await createClient(HealthService, transport).check({}, { signal: AbortSignal.any([env.signal, AbortSignal.timeout(CHECK_TIMEOUT_MS)]) }))
        .status;
    } catch (e) {
      if (verbose) println(env.stderr, `Failed to check health: ${rpcErrorText(e, socketPath, socketPath)}`);
      println(env.stderr, 'Agent is unhealthy: unable to determine health');
      return 1;
    } finally {
      transport.close();
    }
    if (status !== HealthCheckResponse_ServingStatus.SERVING) {
      println(env.stderr, `Agent is unhealthy: agent returned status "${STATUS_NAMES[status] ?? String(status)}"`);
      return 1;
    }
    println(env.stdout, 'Agent is healthy.');
    return 0;
  },
};
