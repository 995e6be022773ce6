// A real SPIRE v1.13.0 server plus our agent (join token) in a temp dir, for agent tests.
import { join } from 'node:path';
import { createClient, type Client } from '@connectrpc/connect';
import { SpiffeWorkloadAPI, createUnixGrpcTransport, headersInterceptor, type GrpcClientTransport } from '@ztwim/proto';
import { silentLogger } from '@ztwim/core';
import { buildAgentConfig, startAgent, type AgentConfig, type RunningAgent } from '@ztwim/agent';
import { parseConfigText } from '@ztwim/core';
import { startSpireServer, type SpireServer } from './spire-server.ts';
import { freePort } from './spire-admin.ts';
import { agentConf } from './server-conf.ts';
import { makeTmpDir, type TmpDir } from './tmp.ts';

export interface AgentEnv {
  tmp: TmpDir;
  server: SpireServer;
  port: number;
  agent: RunningAgent;
  config: AgentConfig;
  workload(headers?: boolean): { client: Client<typeof SpiffeWorkloadAPI>; transport: GrpcClientTransport };
  restartServer(): Promise<void>;
  close(): Promise<void>;
}

export function agentConfigFor(tmp: TmpDir, port: number, token: string, bundlePem: string, syncInterval = '500ms'): AgentConfig {
  const doc = parseConfigText(
    agentConf({
      serverPort: port,
      trustDomain: 'example.org',
      dataDir: join(tmp.path, 'agent-data'),
      socketPath: join(tmp.path, 'agent', 'api.sock'),
      syncInterval,
    }),
    'hcl',
  );
  return { ...buildAgentConfig(doc, 'test agent.conf'), joinToken: token, trustBundle: bundlePem };
}

export async function startAgentEnv(opts: { syncInterval?: string } = {}): Promise<AgentEnv> {
  const tmp = makeTmpDir('ztwim-agent-');
  const port = await freePort();
  let server = await startSpireServer(tmp, { bindPort: port, keyManager: 'disk' });
  const bundlePem = server.cli(['bundle', 'show']);
  const tokenOut = server.cli(['token', 'generate', '-spiffeID', 'spiffe://example.org/myagent']);
  const token = /Token:\s*(\S+)/.exec(tokenOut)?.[1];
  if (token === undefined) throw new Error(`no token in ${tokenOut}`);
  const config = agentConfigFor(tmp, port, token, bundlePem, opts.syncInterval);
  const agent = await startAgent(config, { logger: silentLogger() });
  const transports: GrpcClientTransport[] = [];
  const env: AgentEnv = {
    tmp,
    server,
    port,
    agent,
    config,
    workload(headers = true) {
      const transport = createUnixGrpcTransport(config.socketPath, headers ? { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] } : {});
      transports.push(transport);
      return { client: createClient(SpiffeWorkloadAPI, transport), transport };
    },
    async restartServer() {
      server = await startSpireServer(tmp, { bindPort: port, keyManager: 'disk' });
      env.server = server;
    },
    async close() {
      for (const t of transports) t.close();
      await env.agent.close();
      await env.server.stop();
      tmp.cleanup();
    },
  };
  return env;
}
