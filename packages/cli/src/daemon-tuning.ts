// V8 tuning for the commands that keep running (agent run, server run, oidc run, up, csi), applied
// as one of them starts; short commands (api fetch, entry show, ...) keep V8's defaults.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { systemClock } from '@ztwim/core';
import { trimNativeHeap } from '@ztwim/peercred';
import { useLightHeaders } from './light-headers.ts';
import { v8FullGc, watchMemoryBudget } from './memory-budget.ts';

export { DEFAULT_MEMORY_BUDGET_MIB } from './memory-budget.ts';

/**
 * V8 optimizes a function once it has run about 66 KB of bytecode (`--interrupt-budget`). A
 * daemon's per-call code is small, so a path that turns hot (say, the first workloads asking for
 * JWT-SVIDs with new audiences, which sends the agent to the server for each) used to run several
 * seconds in unoptimized code while V8 compiled it on the same two cores: measured on the agent
 * bench's uncached JWT row, p99 in the row's first 5 s was 3.8-4.0 ms with the default budget and
 * 2.7-3.0 ms with 8 KB, and calls per second rose by 13 %. Steady-state speed is the same. Not in
 * the shebang: every short command would compile its start-up code too (`ztwim --help` took
 * 0.60 s instead of 0.53 s).
 */
export const DAEMON_V8_FLAGS: readonly string[] = ['--interrupt-budget=8192'];

/**
 * With a memory budget, V8 also runs `--optimize-for-size`: it grows the old generation in small
 * steps (it reads the flag each time it sizes the heap, so setting it after start works;
 * `--max-old-space-size` does not). Without it a burst of Workload API calls left the agent with a
 * 31 MiB old space of which 15 MiB was in use, kept until V8's memory reducer ran: agent RSS after
 * 5 s of 16 clients 105 MiB, with it 72-79 MiB (bench/agent-memory.ts). It costs CPU: agent
 * calls per CPU second, 8 clients, 4 interleaved runs on a loaded machine, JWT cached 1,297-2,056
 * vs 1,995-2,163 without, X.509 1,452-1,843 vs 2,153-2,688; so the budget watcher turns it off
 * while the event loop is busy (a burst of workloads) and back on once idle. `-memoryBudget 0`
 * turns both off.
 */
export const MEMORY_BUDGET_V8_FLAGS: readonly string[] = ['--optimize-for-size', '--semi-space-growth-factor=1'];

/**
 * The V8 defaults MEMORY_BUDGET_V8_FLAGS go back to while the event loop is busy. The young
 * generation starts at 1 MiB and, with V8's growth factor of 2, grows up to the
 * `--max-semi-space-size` (4 MiB for the shipped daemons: 8 MiB with both semi-spaces) the first
 * time a burst keeps many objects alive, and keeps that size: an agent's first sync of 1,000
 * entries (1,000 keys made at once) grew it, and it stayed resident. With a growth factor of 1
 * while lean it stays at 1 MiB until the process is busy: agent with 1,000 entries, idle after
 * the sync and the budget's GC (memory-budget.ts, RELEASE_GROWTH_MIB), young generation 1 MiB
 * instead of 8 and 76 MiB resident instead of 81 (bench/agent-memory.ts, 2026-12-07).
 */
export const MEMORY_BUDGET_V8_DEFAULTS: readonly string[] = ['--no-optimize-for-size', '--semi-space-growth-factor=2'];

export interface DaemonTuning {
  /** Watch the resident set against this many MiB (memory-budget.ts); 0 or absent: no watcher. */
  readonly memoryBudgetMiB?: number;
}

export interface DaemonTuned {
  /**
   * With a memory budget: a full GC and C heap trim now, for the end of a burst the daemon knows
   * of (the agent's first sync: 1,000 keys made at once leave V8's heap at 29 MiB committed, 12 in
   * use after the GC; resident set 92 MiB → 78). Without one: nothing.
   */
  releaseMemory(): void;
}

/** Applies DAEMON_V8_FLAGS, the light Headers and the memory budget (with its V8 flags) to this process. */
export function tuneForDaemon(o: DaemonTuning = {}): DaemonTuned {
  for (const f of DAEMON_V8_FLAGS) setFlagsFromString(f);
  useLightHeaders();
  const budget = o.memoryBudgetMiB ?? 0;
  if (budget > 0) {
    let prev = performance.eventLoopUtilization();
    const watch = watchMemoryBudget(budget, {
      busyShare: () => {
        const now = performance.eventLoopUtilization();
        const share = performance.eventLoopUtilization(now, prev).utilization;
        prev = now;
        return share;
      },
      setLeanHeap: (lean) => {
        for (const f of lean ? MEMORY_BUDGET_V8_FLAGS : MEMORY_BUDGET_V8_DEFAULTS) setFlagsFromString(f);
      },
      clock: systemClock,
      rssBytes: () => process.memoryUsage.rss(),
      heapBytes: () => getHeapStatistics().total_heap_size,
      // After the GC, the C heap's free memory goes back too: after a burst of connections glibc
      // keeps what nghttp2 and the socket buffers freed (a burst of 1,000 Workload API clients
      // left the agent 40 MiB over idle 60 s later; malloc_trim brought it back to idle + 6).
      fullGc: withNativeTrim(v8FullGc()),
      onOverBudget: (x) =>
        process.stderr.write(
          `ztwim: resident memory ${x.rssMiB} MiB is above the memory budget of ${x.budgetMiB} MiB after a full GC; next check in ${Math.round(x.nextCheckMs / 1000)} s (raise -memoryBudget, or 0 to turn the budget off)\n`,
        ),
    });
    return { releaseMemory: () => watch.release() };
  }
  return { releaseMemory: () => undefined };
}

/** `gc`, then the C heap's free memory handed back to the kernel (`trimNativeHeap`). */
export function withNativeTrim(gc: () => void, trim: () => boolean = trimNativeHeap): () => void {
  return () => {
    gc();
    trim();
  };
}
