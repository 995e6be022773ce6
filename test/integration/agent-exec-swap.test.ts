// The process that connected replaces its executable after the agent accepted the connection and
// before the first request: the kernel still names it as the peer (SO_PEERCRED is taken at
// connect), so attesting it now would hand its new binary's identity to whoever holds the
// connection (here a forked child that kept the socket). The agent pins the peer when it accepts
// the connection and refuses with the spec's Unavailable "workload attestation failed"; without
// the swap the same harness gets the connecting binary's identity. Real processes throughout.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '@ztwim/testkit';
import type { RunningAgent } from '@ztwim/agent';
import { REPO_ROOT, requireTool } from '../interop/lib/peers.ts';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';

const FIX = join(REPO_ROOT, 'test', 'integration', 'fixtures');

interface Result {
  status: number;
  message: string;
  ids: string[];
}

async function run(python: string, dir: string, sock: string, mode: 'exec' | 'stay', target: string): Promise<Result> {
  const ready = join(dir, `ready-${process.hrtime.bigint()}`);
  const child = spawn(python, [join(FIX, 'exec-swap.py'), sock, mode, target, process.execPath, join(FIX, 'fetch-on-fd.mjs'), ready], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await eventually('a result line from the exec-swap harness', () => out.includes('\n') || child.exitCode !== null, {
    timeoutMs: 20_000,
    intervalMs: 50,
  }).catch(
    () => undefined, // reported below with its output
  );
  // In "exec" mode the spawned pid now runs `sleep 30`.
  child.kill('SIGKILL');
  await exited;
  rmSync(ready, { force: true });
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`no result from the exec-swap harness:\n${out}`);
  return JSON.parse(line) as Result;
}

describe('executable replaced between connect and attestation', () => {
  let stack: Stack;
  let agent: RunningAgent;
  let python: string;
  const sleep = realpathSync(requireTool('sleep'));
  const uid = process.getuid?.() ?? 0;

  before(async () => {
    // The interpreter itself (python3 on PATH may be a wrapper script, e.g. a pyenv shim).
    const py = spawnSync(requireTool('python3'), ['-c', 'import os, sys; print(os.path.realpath(sys.executable))'], { encoding: 'utf8' });
    python = py.stdout.trim();
    assert.ok(python.startsWith('/'), `python3: ${py.stdout}${py.stderr}`);
    stack = await startStack();
    ({ agent } = await stack.startAgent({ unixPluginData: 'discover_workload_path = true' }));
    const sleepHash = createHash('sha256').update(readFileSync(sleep)).digest('hex');
    await stack.createEntries([
      { parentId: agent.agentId, path: '/exec/python', selectors: [`unix:uid:${uid}`, `unix:path:${python}`] },
      { parentId: agent.agentId, path: '/exec/sleep', selectors: [`unix:uid:${uid}`, `unix:sha256:${sleepHash}`] },
    ]);
  });
  after(async () => {
    await stack?.close();
  });

  it('control: the connecting process keeps running, the connection gets its identity', async () => {
    let r: Result | undefined;
    await eventually(
      'the control connection to get its identity',
      async () => {
        r = await run(python, stack.tmp.path, agent.socketPath, 'stay', sleep);
        return r.status === 0;
      },
      { timeoutMs: 15_000, intervalMs: 300 },
    ).catch(() => undefined); // the last result is compared below
    assert.deepEqual(r, { status: 0, message: '', ids: ['spiffe://example.org/exec/python'] });
  });

  it('the connecting process execs another binary before the first request: Unavailable, no identity', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await run(python, stack.tmp.path, agent.socketPath, 'exec', sleep);
      assert.equal(r.status, 14, JSON.stringify(r));
      assert.equal(r.message, 'workload attestation failed');
      assert.deepEqual(r.ids, []);
    }
  });
});
