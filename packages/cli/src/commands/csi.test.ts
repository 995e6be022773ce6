// `ztwim csi`'s flags in-process: the node ID comes from -node-id, else from the variable
// -node-id-env names (MY_NODE_NAME by default, as spiffe-csi-driver); bad log flags are usage errors.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually } from '@ztwim/testkit';
import { createClient } from '@connectrpc/connect';
import { createUnixGrpcTransport, CsiIdentityService, CsiNodeService } from '@ztwim/proto';
import { runCaptured } from '../capture.ts';
import { rootCommand } from '../root.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-cli-csi-'));
mkdirSync(join(dir, 'sockets'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `ztwim csi ...args` until it serves, asks NodeGetInfo and GetPluginInfo, stops it; returns what it saw. */
async function nodeIdAndPlugin(args: string[], vars: NodeJS.ProcessEnv): Promise<{ nodeId: string; plugin: string; status: number }> {
  const socket = join(dir, `csi-${Math.random().toString(36).slice(2)}.sock`);
  const ctl = new AbortController();
  const run = runCaptured(
    rootCommand(),
    ['csi', '-workload-api-socket-dir', join(dir, 'sockets'), '-csi-socket-path', socket, '-log-level', 'error', ...args],
    {
      vars,
      signal: ctl.signal,
    },
  );
  await eventually('the CSI socket', () => existsSync(socket), { timeoutMs: 5_000, intervalMs: 25 });
  const t = createUnixGrpcTransport(socket);
  try {
    const nodeId = (await createClient(CsiNodeService, t).nodeGetInfo({})).nodeId;
    const plugin = (await createClient(CsiIdentityService, t).getPluginInfo({})).name;
    ctl.abort();
    const { status } = await run;
    assert.equal(existsSync(socket), false, 'socket removed on stop');
    return { nodeId, plugin, status };
  } finally {
    t.close();
  }
}

describe('ztwim csi flags', () => {
  it('takes the node ID from MY_NODE_NAME by default, from -node-id-env, and -node-id over both', async () => {
    assert.deepEqual(await nodeIdAndPlugin([], { MY_NODE_NAME: 'node-env' }), { nodeId: 'node-env', plugin: 'csi.spiffe.io', status: 0 });
    assert.equal((await nodeIdAndPlugin(['-node-id-env', 'OTHER'], { MY_NODE_NAME: 'x', OTHER: 'node-other' })).nodeId, 'node-other');
    assert.equal((await nodeIdAndPlugin(['-node-id', 'node-flag'], { MY_NODE_NAME: 'x' })).nodeId, 'node-flag');
    assert.equal((await nodeIdAndPlugin(['-node-id', 'n', '-plugin-name', 'csi.example.org'], {})).plugin, 'csi.example.org');
  });

  it('refuses an unknown log level or format (exit 2), naming the flag', async () => {
    const level = await runCaptured(rootCommand(), ['csi', '-log-level', 'loud'], { vars: {} });
    assert.equal(level.status, 2);
    assert.match(level.stderr, /-log-level must be one of debug, info, warn, error \(got "loud"\)/);
    const format = await runCaptured(rootCommand(), ['csi', '-log-format', 'xml'], { vars: {} });
    assert.equal(format.status, 2);
    assert.match(format.stderr, /-log-format must be json or text \(got "xml"\)/);
  });
});
