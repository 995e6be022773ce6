// The memory budget of a long-running ztwim process (`agent run`, `server run`: `-memoryBudget`).
//
// Why a watcher and not `--max-old-space-size`: V8 sizes its heap limits when the isolate is
// created, so they can only come from node's command line; Node 20 cannot exec itself in place,
// and a launcher that spawned a child node would keep a second ~40 MiB process alive beside the
// daemon. What can change at run time is how eagerly V8 grows and gives back its heap:
// `--optimize-for-size` (set by the daemon tuning) grows the old generation in smaller steps, and
// a full GC returns the pages a burst of load left behind at once, where V8's own memory reducer
// waits for the process to look idle. The watcher below compares the resident set with the budget
// and runs that GC when it is exceeded; if the process still needs more (say, an agent holding
// 100,000 SVIDs), it says so once and checks less and less often, so it never spends its time in
// GC. It never refuses work or exits.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { Clock } from '@ztwim/core';
import { UsageError, type Flags, type FlagSpec } from './flags.ts';

/** Default budget in MiB: SPIRE v1.13.0's agent and server stay below it on bench/agent-memory.ts. */
export const DEFAULT_MEMORY_BUDGET_MIB = 96;
/** Smallest budget accepted: below it a Node process cannot even start its runtime (~40 MiB). */
export const MIN_MEMORY_BUDGET_MIB = 48;
const CHECK_MS = 2_000;
const MAX_CHECK_MS = 5 * 60_000;

export interface OverBudget {
  readonly rssMiB: number;
  readonly budgetMiB: number;
  readonly nextCheckMs: number;
}

export interface MemoryBudgetDeps {
  readonly clock: Pick<Clock, 'setTimer'>;
  /** Resident set size in bytes (process.memoryUsage.rss in production). */
  readonly rssBytes: () => number;
  /**
   * V8's committed heap in bytes (v8.getHeapStatistics().total_heap_size in production), what a
   * burst grows and a full GC gives back; absent: the resident set stands for it.
   */
  readonly heapBytes?: () => number;
  /** A full, compacting GC. */
  readonly fullGc: () => void;
  /** Called when a GC did not bring the process under budget (then the checks back off). */
  readonly onOverBudget: (o: OverBudget) => void;
  /**
   * The share of time the event loop was busy since the previous call, 0 to 1
   * (performance.eventLoopUtilization in production). Absent: never busy.
   */
  readonly busyShare?: () => number;
  /**
   * Turns V8's lean heap mode (`--optimize-for-size`) on (idle) or off (busy); called on each
   * change, first with `true` when the watcher starts.
   */
  readonly setLeanHeap?: (lean: boolean) => void;
}

/**
 * Above this event-loop utilization the process is serving a burst of load (a node's workloads
 * starting together: 1,000 connections): the memory is in use, so a full GC would free little and
 * stall every open connection for 100-300 ms (measured on the burst interop test: `still above the
 * budget after a full GC` in every such round), and the lean heap's frequent compacting GCs cost
 * the burst's CPU. Both wait until the burst is over.
 */
export const BUSY_SHARE = 0.5;

/**
 * Under budget, a full GC (and C heap trim) still runs at the first idle check after V8's heap
 * grew this many MiB above where it last settled (or the resident set twice as many): what a burst (a load of Workload API clients)
 * leaves behind goes back then, not when V8's memory reducer gets to it. An agent with 1,000
 * entries, 10 s after 10 s of 16 clients: 89 MiB before, 76-79 with it (bench/agent-memory.ts).
 * Once per burst: the level the heap settles at is the new reference, so a process that holds
 * more for good does not GC again for it. The heap, not the resident set: at start the resident
 * set grows by code and buffers that stay, and a GC then costs memory (it compacts into new
 * pages).
 */
export const RELEASE_GROWTH_MIB = 8;
/**
 * The event loop's busy share below which the process counts as idle for that GC: a burst that
 * keeps it between this and BUSY_SHARE (an agent's sync minting SVIDs, its keys made on the thread
 * pool) would otherwise get the GC half-way through, and what it leaves after that point would stay
 * (seen on the probe of an agent with 1,000 entries: 86 MiB idle instead of 74).
 */
export const IDLE_SHARE = 0.1;

/** `-memoryBudget MiB` of `agent run` / `server run`. */
export const MEMORY_BUDGET_FLAG: FlagSpec = {
  kind: 'int',
  usage: `Resident memory to keep the process under, in MiB: a full GC when above it (0: no budget)`,
  default: DEFAULT_MEMORY_BUDGET_MIB,
  arg: 'MiB',
};

/** The `-memoryBudget` value: 0 (no budget) or a whole number of MiB ≥ MIN_MEMORY_BUDGET_MIB. */
export function memoryBudgetOf(flags: Flags): number {
  const value = flags.int('memoryBudget');
  if (!Number.isInteger(value) || value < 0 || (value > 0 && value < MIN_MEMORY_BUDGET_MIB)) {
    throw new UsageError(`-memoryBudget ${value}: expected 0 (no budget) or a whole number of MiB ≥ ${MIN_MEMORY_BUDGET_MIB}`);
  }
  return value;
}

export interface MemoryBudgetWatch {
  /**
   * The end of a burst the caller knows of (an agent's first sync): the full GC now if the burst
   * grew the heap or the resident set as for the checks (RELEASE_GROWTH_MIB), whatever the event
   * loop's busy share.
   */
  release(): void;
  stop(): void;
}

/**
 * Watches the resident set against `budgetMiB`: every 2 s while under budget; when over, one full
 * GC; if still over after it, onOverBudget and the next check twice as late (up to 5 min), back to
 * 2 s once under. Under budget, one full GC after a burst (RELEASE_GROWTH_MIB), or when told
 * (`release`). While the event loop was busy (BUSY_SHARE) since the last check, neither GC nor
 * lean heap: checks every 2 s until it is not. Returns the watch (`release`, `stop`).
 */
export function watchMemoryBudget(budgetMiB: number, deps: MemoryBudgetDeps): MemoryBudgetWatch {
  const budgetBytes = budgetMiB * 1024 * 1024;
  const growthBytes = RELEASE_GROWTH_MIB * 1024 * 1024;
  const heap = deps.heapBytes ?? deps.rssBytes;
  /** The heap and the resident set where they last settled: the smallest seen at a check since the last GC. */
  let settled = heap();
  let settledRss = deps.rssBytes();
  /** Whether a burst left enough behind for a GC to be worth it (RELEASE_GROWTH_MIB). */
  const grown = (rss: number): boolean => heap() > settled + growthBytes || rss > settledRss + 2 * growthBytes;
  const gc = (): number => {
    deps.fullGc();
    settled = heap();
    settledRss = deps.rssBytes();
    return settledRss;
  };
  let period = CHECK_MS;
  let cancel = (): void => undefined;
  let stopped = false;
  let lean = true;
  deps.setLeanHeap?.(true);
  const check = (): void => {
    if (stopped) return;
    const share = deps.busyShare?.() ?? 0;
    const busy = share >= BUSY_SHARE;
    if (busy === lean) {
      lean = !busy;
      deps.setLeanHeap?.(lean);
    }
    if (busy) {
      // A check that backed off is due again soon after the burst (it may have left garbage).
      period = CHECK_MS;
    } else {
      const before = deps.rssBytes();
      if (before > budgetBytes || (share < IDLE_SHARE && grown(before))) {
        const rss = gc();
        if (rss > budgetBytes) {
          period = Math.min(period * 2, MAX_CHECK_MS);
          deps.onOverBudget({ rssMiB: Math.round(rss / 1048576), budgetMiB, nextCheckMs: period });
        } else {
          period = CHECK_MS;
        }
      } else {
        settled = Math.min(settled, heap());
        settledRss = Math.min(settledRss, before);
        period = CHECK_MS;
      }
    }
    cancel = deps.clock.setTimer(period, check);
  };
  cancel = deps.clock.setTimer(period, check);
  return {
    release: () => {
      if (!stopped && grown(deps.rssBytes())) gc();
    },
    stop: () => {
      stopped = true;
      cancel();
    },
  };
}

/**
 * V8's full GC, reached without leaving `gc` on the global object (no --expose-gc at start). The
 * function is fetched on the first call: it takes a new V8 context (several ms of CPU), which a
 * daemon whose memory stays under its budget never needs.
 */
export function v8FullGc(): () => void {
  let gc: (() => void) | undefined;
  return () => {
    if (gc === undefined) {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
      setFlagsFromString('--no-expose-gc');
    }
    gc();
  };
}
