// "Entries per agent" for the dashboard: how many entries each agent is authorised for (the
// server's reach: packages/console/src/explain.ts ReachIndex). Computing it means listing every
// entry (100,000 entries: a few seconds of the server's and the console's time), so the answer
// is cached: recomputed only when the server's fingerprint moved, and at most once per
// `minIntervalMs`, one computation at a time, whatever the number of open dashboards.
import type { Clock } from '@ztwim/core';
import { ReachIndex, type ExplainEntry, type ExplainSelector } from './explain.ts';

export interface AgentCountInput {
  readonly id: string;
  readonly selectors: readonly ExplainSelector[];
}

export interface AgentEntryCount {
  readonly agentId: string;
  readonly entries: number;
}

export interface EntriesPerAgent {
  /** Agents with the most entries first (at most `top`), then by ID. */
  readonly rows: readonly AgentEntryCount[];
  readonly agents: number;
  readonly entries: number;
  /** Unix ms when it was computed. */
  readonly computedAt: number;
  /** Milliseconds the computation took (listing included). */
  readonly tookMs: number;
}

/** Counts each agent's reachable entries; one index of the entries for all agents. */
export function countEntriesPerAgent(agents: readonly AgentCountInput[], entries: readonly ExplainEntry[], top = 50): AgentEntryCount[] {
  const index = new ReachIndex(entries);
  const rows = agents.map((a) => ({ agentId: a.id, entries: index.reachable(a.id, a.selectors).length }));
  rows.sort((x, y) => y.entries - x.entries || (x.agentId < y.agentId ? -1 : x.agentId > y.agentId ? 1 : 0));
  return rows.slice(0, top);
}

export interface EntriesPerAgentCacheOptions {
  readonly clock: Clock;
  /** The server's fingerprint now (AdminApi.fingerprint). */
  readonly fingerprint: () => Promise<string>;
  readonly load: () => Promise<{ agents: readonly AgentCountInput[]; entries: readonly ExplainEntry[] }>;
  /** Default 30 s. */
  readonly minIntervalMs?: number;
  readonly top?: number;
}

export class EntriesPerAgentCache {
  readonly #opts: EntriesPerAgentCacheOptions;
  #value: EntriesPerAgent | undefined;
  #fingerprint = '';
  #running: Promise<EntriesPerAgent> | undefined;

  constructor(opts: EntriesPerAgentCacheOptions) {
    this.#opts = opts;
  }

  /** The cached answer while the server has not changed or it is younger than the interval. */
  async get(): Promise<EntriesPerAgent> {
    const cached = this.#value;
    if (cached !== undefined && this.#opts.clock.nowMs() - cached.computedAt < (this.#opts.minIntervalMs ?? 30_000)) return cached;
    const f = await this.#opts.fingerprint();
    if (cached !== undefined && f === this.#fingerprint) return cached;
    this.#running ??= this.#compute(f).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #compute(fingerprint: string): Promise<EntriesPerAgent> {
    const t0 = this.#opts.clock.nowMs();
    const { agents, entries } = await this.#opts.load();
    const rows = countEntriesPerAgent(agents, entries, this.#opts.top ?? 50);
    const now = this.#opts.clock.nowMs();
    this.#value = { rows, agents: agents.length, entries: entries.length, computedAt: now, tookMs: now - t0 };
    this.#fingerprint = fingerprint;
    return this.#value;
  }
}
