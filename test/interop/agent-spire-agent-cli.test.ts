// The real `spire-agent api fetch` (v1.13.0) against our agent's Workload API socket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '@ztwim/testkit';
import { makeTmpDir } from './lib/tmp.ts';
import { runZtwim } from './lib/ztwim-cli.ts';
import { spireAgentBin } from './lib/peers.ts';
import { startAgentEnv, type AgentEnv } from './lib/ztwim-agent-env.ts';

describe('spire-agent api fetch against our agent', () => {
  let env: AgentEnv;
  const bin = spireAgentBin();
  before(async () => {
    env = await startAgentEnv();
    env.server.cli([
      'entry',
      'create',
      '-parentID',
      env.agent.agentId,
      '-spiffeID',
      'spiffe://example.org/cli',
      '-selector',
      `unix:uid:${process.getuid?.() ?? 0}`,
    ]);
  });
  after(async () => {
    await env?.close();
  });

  // Async: our agent runs in this process, a sync spawn would block it. Retried until the agent answers.
  const run = (args: string[]): Promise<string> =>
    eventually(
      `spire-agent api fetch ${args.join(' ')}`,
      async () =>
        (await promisify(execFile)(bin, ['api', 'fetch', ...args, '-socketPath', env.config.socketPath], { encoding: 'utf8', timeout: 20_000 })).stdout,
      { timeoutMs: 15_000, intervalMs: 300, retryErrors: true },
    );

  test('api fetch x509', async () => {
    const out = await run(['x509']);
    assert.match(out, /SPIFFE ID:\s+spiffe:\/\/example\.org\/cli/);
  });

  test('api fetch jwt -audience test', async () => {
    const out = await run(['jwt', '-audience', 'test']);
    assert.match(out, /spiffe:\/\/example\.org\/cli/);
    assert.match(out, /eyJ/);
  });

  test('api fetch x509 -write: ztwim prints the lines and writes the files and modes spire-agent does', async () => {
    const tmp = makeTmpDir('ztwim-write-');
    try {
      const spireDir = join(tmp.path, 'spire');
      const ourDir = join(tmp.path, 'ztwim');
      // spire-agent writes into an existing directory only (ztwim creates it)
      mkdirSync(spireDir);
      mkdirSync(ourDir);
      const spireOut = await run(['x509', '-write', spireDir]);
      const ours = await runZtwim(tmp.path, ['api', 'fetch', 'x509', '-socketPath', env.config.socketPath, '-write', ourDir]);
      assert.equal(ours.status, 0, ours.stderr);
      // spire-agent prints the SVID summary first, then one "Writing ..." line per file
      const writing = (out: string, dir: string): string[] =>
        out
          .split('\n')
          .filter((l) => l.startsWith('Writing '))
          .map((l) => l.replaceAll(dir, '<dir>'));
      const expected = writing(spireOut, spireDir);
      assert.ok(expected.length >= 3, `spire-agent wrote: ${spireOut}`);
      assert.deepEqual(writing(ours.stdout, ourDir), expected);
      const files = (dir: string): Array<[string, number]> =>
        readdirSync(dir)
          .sort()
          .map((n) => [n, statSync(join(dir, n)).mode & 0o777]);
      assert.deepEqual(files(ourDir), files(spireDir));
    } finally {
      tmp.cleanup();
    }
  });
});
