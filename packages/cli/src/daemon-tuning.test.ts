import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withNativeTrim } from './daemon-tuning.ts';
import { spawnSync } from 'node:child_process';

// How many calls a small function takes to be optimized by TurboFan, in a fresh node (compiling
// on the main thread, so the count is exact), with or without tuneForDaemon() first.
const PROBE = `
import v8 from 'node:v8';
import { tuneForDaemon } from ${JSON.stringify(new URL('./daemon-tuning.ts', import.meta.url).href)};
if (process.argv.includes('tuned')) tuneForDaemon();
v8.setFlagsFromString('--allow-natives-syntax');
const status = new Function('f', 'return %GetOptimizationStatus(f)');
function work(a) { let s = 0; for (let i = 0; i < 4; i++) s += (a * i) ^ (s >>> 1); return s; }
let calls = 0;
while (calls < 100000 && (status(work) & 64) === 0) { work(calls); calls++; }
console.log(calls);
`;

function callsUntilOptimized(mode: 'default' | 'tuned'): number {
  const r = spawnSync(process.execPath, [...process.execArgv, '--no-concurrent-recompilation', '--input-type=module', '-e', PROBE, mode], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test('tuneForDaemon: hot code is optimized after far fewer calls than with V8 defaults', () => {
  const plain = callsUntilOptimized('default');
  const tuned = callsUntilOptimized('tuned');
  assert.ok(plain > 0 && plain < 100000, `default: optimized after ${plain} calls`);
  assert.ok(tuned * 3 < plain, `tuned: ${tuned} calls, default: ${plain}`);
});

test('withNativeTrim: the GC runs first, then the C heap is trimmed, on every call', () => {
  const calls: string[] = [];
  const fullGc = withNativeTrim(
    () => calls.push('gc'),
    () => {
      calls.push('trim');
      return true;
    },
  );
  fullGc();
  fullGc();
  assert.deepEqual(calls, ['gc', 'trim', 'gc', 'trim']);
});

// The young generation's size in a fresh node (4 MiB semi-spaces at most, as the shipped daemons)
// after a burst that keeps many objects alive across scavenges, with or without a memory budget.
const YOUNG = `
import v8 from 'node:v8';
import { tuneForDaemon } from ${JSON.stringify(new URL('./daemon-tuning.ts', import.meta.url).href)};
tuneForDaemon(process.argv.includes('budget') ? { memoryBudgetMiB: 96 } : {});
let kept = [];
for (let i = 0; i < 300_000; i++) {
  kept.push({ i, s: 'x' + i });
  if (kept.length > 50_000) kept = [];
}
const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
console.log(young.space_size);
process.exit(0);
`;

function youngGenerationBytes(mode: 'budget' | 'none'): number {
  const r = spawnSync(process.execPath, [...process.execArgv, '--max-semi-space-size=4', '--input-type=module', '-e', YOUNG, mode], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test('tuneForDaemon: with a memory budget the young generation stays at its initial size through a burst (lean heap)', () => {
  const lean = youngGenerationBytes('budget');
  const plain = youngGenerationBytes('none');
  assert.ok(lean > 0 && lean <= 2 * 1024 * 1024, `with a budget: ${lean} bytes`);
  assert.ok(plain >= 2 * lean, `without: ${plain} bytes, with: ${lean}`);
});
