import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { liveProcs, runBinary, startProc, waitReady } from './procs.ts';
import { withTmpDir } from './tmp-dir.ts';

const node = process.execPath;

test('startProc collects output; waitReady returns what the check found; stop ends the process', async () => {
  const p = startProc('echoer', node, ['-e', 'console.log("ready 42"); setInterval(() => {}, 1000)']);
  assert.ok(liveProcs.has(p));
  const n = await waitReady('the ready line', p, () => /ready (\d+)/.exec(p.output())?.[1], { intervalMs: 10 });
  assert.equal(n, '42');
  await p.stop();
  assert.ok(p.exited());
  assert.equal(p.exitCode(), null, 'ended by SIGTERM');
  assert.ok(!liveProcs.has(p));
});

test('waitReady fails at once, with the output, when the process exits', async () => {
  const p = startProc('quitter', node, ['-e', 'console.error("bad config"); process.exit(3)']);
  const t0 = Date.now();
  await assert.rejects(
    waitReady('never', p, () => false, { timeoutMs: 30_000, intervalMs: 10 }),
    (e: Error) => /quitter exited \(3\) while waiting for never:\nbad config/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 20_000, 'did not wait out the timeout');
});

test('waitReady names what it waited for and shows the output on timeout', async () => {
  const p = startProc('sleeper', node, ['-e', 'console.log("starting"); setInterval(() => {}, 1000)']);
  try {
    await assert.rejects(
      waitReady('the socket', p, () => undefined, { timeoutMs: 50, intervalMs: 10 }),
      (e: Error) => /timed out after 50 ms waiting for the socket; sleeper output:\n/.test(e.message),
    );
  } finally {
    await p.stop();
  }
});

test('stop() SIGKILLs a process that ignores SIGTERM after the grace period', async () => {
  const p = startProc('stubborn', node, ['-e', 'process.on("SIGTERM", () => {}); console.log("up"); setInterval(() => {}, 1000)'], { stopGraceMs: 100 });
  await waitReady('its handler installed', p, () => p.output().includes('up'), { intervalMs: 10 });
  await p.stop();
  assert.equal(p.child.signalCode, 'SIGKILL');
});

test('outputFile: the child writes to the file, output() reads it back', async () => {
  await withTmpDir(async (dir) => {
    const file = dir.file('out.log');
    const p = startProc('writer', node, ['-e', 'console.log("to the file")'], { outputFile: file });
    await new Promise((r) => p.child.once('exit', r));
    assert.equal(readFileSync(file, 'utf8'), 'to the file\n');
    assert.equal(p.output(), 'to the file\n');
  });
});

test('a command that cannot start throws naming it', () => {
  assert.throws(() => startProc('ghost', '/nonexistent/ghost-binary', []), /could not start ghost \(\/nonexistent\/ghost-binary\)/);
});

test('runBinary returns status, stdout and stderr, feeding stdin', async () => {
  const r = await runBinary(node, ['-e', 'process.stdin.pipe(process.stdout); console.error("e"); process.exitCode = 2'], { input: 'in' });
  assert.deepEqual(r, { status: 2, stdout: 'in', stderr: 'e\n' });
});
