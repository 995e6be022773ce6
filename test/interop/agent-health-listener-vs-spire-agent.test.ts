// SPIRE's `health_checks` listener on the agent (the DaemonSet's httpGet probes on /live and
// /ready): our agent and a real spire-agent v1.13.0, attached to the same spire-server with the
// same block, answer the same paths with the same status codes; 404 elsewhere on both; our
// listener closes with the agent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfigText, silentLogger } from '@ztwim/core';
import { buildAgentConfig, startAgent, type RunningAgent } from '@ztwim/agent';
import { freePort, startSpireAgent, type SpireAgent } from './lib/spire-agent.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { agentConf } from './lib/server-conf.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { until } from './lib/wait.ts';

const block = (port: number): string =>
  `health_checks {\n  listener_enabled = true\n  bind_address = "127.0.0.1"\n  bind_port = "${port}"\n  live_path = "/alive"\n  ready_path = "/isready"\n}\n`;

/** Status of GET path, retried while the listener is not up yet (spire-agent starts it after attesting). */
async function status(port: number, path: string): Promise<number> {
  return await until(
    `an answer to GET ${path} on 127.0.0.1:${port}`,
    () =>
      fetch(`http://127.0.0.1:${port}${path}`).then(
        (r) => r.status,
        () => undefined,
      ),
    20_000,
  );
}

describe('agent health_checks listener: ztwim agent beside spire-agent', () => {
  let tmp: TmpDir;
  let server: SpireServer;
  let spire: SpireAgent;
  let ours: RunningAgent | undefined;
  let spirePort: number;
  let ourPort: number;
  before(async () => {
    tmp = makeTmpDir('ztwim-agent-health-');
    const port = await freePort();
    server = await startSpireServer(tmp, { bindPort: port, keyManager: 'disk' });
    spirePort = await freePort();
    ourPort = await freePort();
    spire = await startSpireAgent(tmp, server, { serverPort: port, extraConfig: block(spirePort) });
    const token = /Token:\s*(\S+)/.exec(server.cli(['token', 'generate', '-spiffeID', 'spiffe://example.org/ours']))?.[1];
    assert.ok(token !== undefined);
    const doc = parseConfigText(
      agentConf({ serverPort: port, trustDomain: 'example.org', dataDir: tmp.file('ours-data'), socketPath: tmp.file('ours/api.sock') }) + block(ourPort),
      'hcl',
    );
    const config = { ...buildAgentConfig(doc, 'agent.conf'), joinToken: token, trustBundle: server.cli(['bundle', 'show']) };
    assert.deepEqual(config.warnings, []);
    ours = await startAgent(config, { logger: silentLogger() });
  });
  after(async () => {
    await ours?.close();
    await spire?.stop();
    await server?.stop();
    tmp?.cleanup();
  });

  for (const path of ['/alive', '/isready', '/live', '/ready', '/']) {
    it(`GET ${path}: the same status from both`, async () => {
      const theirs = await status(spirePort, path);
      assert.equal(await status(ourPort, path), theirs, `spire-agent answered ${theirs}`);
    });
  }

  it('the live and ready paths answer 200 on an attested agent; the listener closes with the agent', async () => {
    assert.equal(await status(ourPort, '/alive'), 200);
    assert.equal(await status(ourPort, '/isready'), 200);
    await ours?.close();
    ours = undefined;
    await assert.rejects(fetch(`http://127.0.0.1:${ourPort}/alive`));
  });
});
