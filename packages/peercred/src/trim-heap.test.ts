// trimNativeHeap: the C heap's free memory goes back to the kernel. A child process (with
// --expose-gc) allocates ~100 MiB of small ArrayBuffers (malloc'd below glibc's mmap threshold, so
// they live in the heap arena), drops them and collects them: the resident set stays where it
// was until trimNativeHeap hands the free arena pages back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const PROBE = `
import { trimNativeHeap } from ${JSON.stringify(new URL('./peer-cred.ts', import.meta.url).href)};
const rss = () => process.memoryUsage.rss() / 1048576;
let bufs = [];
for (let i = 0; i < 100000; i++) bufs.push(Buffer.allocUnsafeSlow(1000));
bufs = null;
globalThis.gc();
globalThis.gc();
const freed = rss();
const released = trimNativeHeap();
console.log(JSON.stringify({ glibc: process.report.getReport().header.glibcVersionRuntime !== undefined, freed, released, trimmed: rss() }));
`;

test('trimNativeHeap: after native memory is freed, the resident set drops by what glibc kept (Linux, glibc)', () => {
  const r = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', '--input-type=module', '-e', PROBE], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { glibc: boolean; freed: number; released: boolean; trimmed: number };
  assert.equal(out.glibc, process.platform === 'linux', 'this project runs on glibc Linux');
  assert.equal(out.released, true);
  assert.ok(out.freed - out.trimmed > 50, `resident ${out.freed.toFixed(0)} MiB before the trim, ${out.trimmed.toFixed(0)} MiB after`);
});
