// A call to a service or method a server does not serve gets a gRPC status, exactly as SPIRE's
// grpc-go servers answer it (Unimplemented, "unknown service X" / "unknown method M for service
// X"), never an HTTP 404: on the ztwim server's admin socket and agent port and on the ztwim
// agent's Workload API, seen by grpc-go (test/interop/go/unknowncall, the client
// spire-controller-manager uses) next to the real spire-server's answers, and by our own client.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { EntryService, SpiffeWorkloadAPI, createUnixGrpcTransport, headersInterceptor } from '@ztwim/proto';
import { goBuild, INTEROP_DIR } from './lib/peers.ts';
import { startAgentEnv, type AgentEnv } from './lib/ztwim-agent-env.ts';
import { startSpireAgent, type SpireAgent } from './lib/spire-agent.ts';
import { startStack, type Stack } from './lib/ztwim-stack.ts';

interface Answer {
  method: string;
  code: string;
  message: string;
}

const UNKNOWN_SERVICE = '/no.such.v1.Service/Method';
const UNKNOWN_ENTRY_METHOD = '/spire.api.server.entry.v1.Entry/NoSuchMethod';

function call(bin: string, target: string[], methods: string[]): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    execFile(bin, [...target, '-methods', methods.join(',')], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Answer[]);
    });
  });
}

describe('unknown services and methods answer Unimplemented with grpc-go texts', () => {
  let bin: string;
  let env: AgentEnv;
  let stack: Stack;
  let spireAgent: SpireAgent;
  before(async () => {
    bin = goBuild(join(INTEROP_DIR, 'go'), './unknowncall');
    env = await startAgentEnv();
    spireAgent = await startSpireAgent(env.tmp, env.server, { serverPort: env.port });
    stack = await startStack();
  });
  after(async () => {
    await spireAgent?.stop();
    await env?.close();
    await stack?.close();
  });

  it('ztwim server admin socket and agent port answer as spire-server does (grpc-go client)', async () => {
    const methods = [UNKNOWN_SERVICE, UNKNOWN_ENTRY_METHOD];
    const spire = await call(bin, ['-socket', env.server.socketPath], methods);
    assert.deepEqual(
      spire.map((a) => [a.code, a.message]),
      [
        ['Unimplemented', 'unknown service no.such.v1.Service'],
        ['Unimplemented', 'unknown method NoSuchMethod for service spire.api.server.entry.v1.Entry'],
      ],
      "spire-server's own answers",
    );
    const admin = await call(bin, ['-socket', join(stack.tmp.path, 'server.sock')], methods);
    const port = await call(bin, ['-tls-addr', `127.0.0.1:${stack.port}`], methods);
    for (const ours of [admin, port]) assert.deepEqual(ours, spire);
  });

  it('ztwim agent Workload API answers as spire-agent does (grpc-go client)', async () => {
    const methods = [UNKNOWN_SERVICE, '/SpiffeWorkloadAPI/NoSuchMethod'];
    const spire = await call(bin, ['-socket', spireAgent.socketPath], methods);
    const wl = await call(bin, ['-socket', env.config.socketPath], methods);
    assert.deepEqual(wl, spire, "spire-agent's own answers");
    assert.deepEqual(
      wl.map((a) => [a.code, a.message]),
      [
        ['Unimplemented', 'unknown service no.such.v1.Service'],
        ['Unimplemented', 'unknown method NoSuchMethod for service SpiffeWorkloadAPI'],
      ],
    );
  });

  it('our own client sees the same status', async () => {
    const onAgent = createUnixGrpcTransport(env.config.socketPath, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
    const onServer = createUnixGrpcTransport(join(stack.tmp.path, 'server.sock'));
    try {
      await assert.rejects(
        createClient(EntryService, onAgent).countEntries({}),
        (e) => e instanceof ConnectError && e.code === Code.Unimplemented && e.rawMessage === 'unknown service spire.api.server.entry.v1.Entry',
      );
      await assert.rejects(
        createClient(SpiffeWorkloadAPI, onServer).fetchJWTSVID({ audience: ['a'] }),
        (e) => e instanceof ConnectError && e.code === Code.Unimplemented && e.rawMessage === 'unknown service SpiffeWorkloadAPI',
      );
    } finally {
      onAgent.close();
      onServer.close();
    }
  });
});
