import type { ProcStatus } from './proc-linux.ts';

/** A selector as SPIRE writes it: type `unix`, value `uid:1000` (shown as `unix:uid:1000`). */
export interface Selector {
  readonly type: string;
  readonly value: string;
}

/**
 * Produces selectors for a process. One implementation per file (`unix.ts`, `k8s.ts`);
 * the agent lists its attestors explicitly. Implementations read whatever they need by pid and
 * throw (ZtwimError) when they cannot; PID-reuse safety is the peer tracker's job, not theirs.
 */
export interface WorkloadAttestor {
  /** Plugin name as in the agent config (`WorkloadAttestor "unix"`), also the selector type. */
  readonly name: string;
  attest(pid: number, signal?: AbortSignal, pinned?: PinnedProcess): Promise<Selector[]>;
}

/**
 * Reads of the process being attested that the peer tracker can make without a path lookup (and
 * bound to that very process, whoever holds its pid). Optional: an attestor falls back to reading
 * by pid.
 */
export interface PinnedProcess {
  /** Its `/proc/<pid>/status`, read now; throws once the process is gone. */
  status(): ProcStatus;
}

/** `type:value`, the form used in logs, the CLI and registration entries. */
export function formatSelector(s: Selector): string {
  return `${s.type}:${s.value}`;
}
