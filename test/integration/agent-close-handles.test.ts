// A started and closed agent leaves nothing behind that keeps the process alive: the process
// exits on its own right after close (it used to linger ~30 s on the RPC deadline timers of
// SyncAuthorizedEntries/AttestAgent streams left with `break`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../interop/lib/peers.ts';

test('agent close: no timers or handles left, process exits at once', async () => {
  const child = spawn(process.execPath, ['--conditions=ztwim-source', '--import', 'tsx', join(REPO_ROOT, 'test/integration/fixtures/agent-close-probe.mts')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let closedAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (closedAt === 0 && out.includes('CLOSED\n')) closedAt = Date.now();
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(killer);
  const exitAt = Date.now();
  assert.equal(code, 0, out);
  assert.ok(closedAt > 0, out);
  const line = out.split('\n').find((l) => l.startsWith('{"id"'));
  assert.ok(line, out);
  const r = JSON.parse(line) as { id: string; jwt: string; resources: string[] };
  assert.equal(r.id, 'spiffe://example.org/probe', 'the agent really served the workload');
  assert.equal(r.jwt, 'spiffe://example.org/probe');
  assert.deepEqual(
    r.resources.filter((x) => x === 'Timeout' || x === 'TCPWRAP' || x === 'TCPServerWrap' || x === 'Http2Session'),
    [],
    `left: ${r.resources.join(', ')}`,
  );
  assert.ok(exitAt - closedAt < 3000, `process lingered ${exitAt - closedAt} ms after close`);
});
