import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { atomicWriteFile, TEMP_PREFIX } from './atomic-write.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-atomic-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('atomicWriteFile replaces the file with exact mode and leaves no temp file', async () => {
  const path = join(dir, 'state.json');
  writeFileSync(path, 'old', { mode: 0o644 });
  await atomicWriteFile(path, 'new content', 0o600);
  assert.equal(readFileSync(path, 'utf8'), 'new content');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  await atomicWriteFile(path, Buffer.from([1, 2, 3]));
  assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
  assert.deepEqual(readdirSync(dir), ['state.json']);
});

it('atomicWriteFile fails without touching the target when the directory is missing', async () => {
  await assert.rejects(atomicWriteFile(join(dir, 'missing', 'x'), 'data'), { code: 'ENOENT' });
});

// The two tests below run a child process under strace (installed by scripts/setup-interop.sh):
// one records the syscalls, the other kills the child with SIGKILL at a chosen syscall.
const child = new URL('./atomic-write-child.test-util.ts', import.meta.url).pathname;
const underStrace = (straceArgs: string[], path: string, content: string) =>
  spawnSync('strace', ['-f', '-qq', ...straceArgs, process.execPath, '--import', 'tsx', child, path, content], { encoding: 'utf8', timeout: 60_000 });

it('atomicWriteFile fsyncs the directory after the rename, so the rename is durable', () => {
  const sub = mkdtempSync(join(dir, 'sync-'));
  const path = join(sub, 'agent-data.json');
  writeFileSync(path, 'old');
  const log = join(dir, 'strace-sync.log');
  const r = underStrace(['-y', '-o', log, '-e', 'trace=openat,rename,renameat,renameat2,fsync,fdatasync'], path, 'new');
  assert.equal(r.error, undefined, `strace must be installed (scripts/setup-interop.sh): ${r.error?.message}`);
  assert.equal(r.status, 0, r.stderr);
  const lines = readFileSync(log, 'utf8').split('\n');
  const renamed = lines.findIndex((l) => /rename/.test(l) && l.includes(`${path}"`) && / = 0$/.test(l));
  assert.ok(renamed >= 0, 'the temp file is renamed over the target');
  const tempSynced = lines.slice(0, renamed).some((l) => new RegExp(`fsync\\(\\d+<${sub}/\\.tmp-agent-data\\.json\\.[0-9a-f]+>\\) = 0`).test(l));
  assert.ok(tempSynced, 'the temp file is fsynced before the rename');
  const dirSynced = lines.slice(renamed + 1).some((l) => new RegExp(`fsync\\(\\d+<${sub}>\\) = 0`).test(l));
  assert.ok(dirSynced, `the directory is fsynced after the rename:\n${lines.join('\n')}`);
  assert.equal(readFileSync(path, 'utf8'), 'new');
});

for (const at of ['fsync', 'rename'] as const) {
  it(`a crash at the ${at} of atomicWriteFile leaves the old file whole`, () => {
    const sub = mkdtempSync(join(dir, `crash-${at}-`));
    const path = join(sub, 'agent-svid.key');
    writeFileSync(path, 'old key', { mode: 0o600 });
    // The child's first fsync is the temp file's, its first rename the one over the target (the
    // temp file found below, holding the new content, shows the kill came at that point).
    const inject =
      at === 'rename'
        ? ['-e', 'trace=rename,renameat,renameat2', '-e', 'inject=rename,renameat,renameat2:signal=SIGKILL:when=1']
        : ['-e', 'trace=fsync', '-e', 'inject=fsync:signal=SIGKILL:when=1'];
    const r = underStrace(inject, path, 'new key');
    assert.equal(r.error, undefined, `strace must be installed (scripts/setup-interop.sh): ${r.error?.message}`);
    assert.ok(r.signal === 'SIGKILL' || r.status === 137, `the child was killed at ${at}: status ${r.status} signal ${r.signal}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /written/);
    assert.equal(readFileSync(path, 'utf8'), 'old key');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const temps = readdirSync(sub).filter((n) => n.startsWith(TEMP_PREFIX));
    assert.equal(temps.length, 1, 'the crash left its temp file (the disk key manager removes such files at start)');
    assert.equal(readFileSync(join(sub, temps[0] ?? ''), 'utf8'), 'new key');
  });
}
