// Runs the go-spiffe oracle (test/interop/spiffecheck) and returns its JSON verdicts.
import { spawnSync } from 'node:child_process';
import { spiffecheckBin } from './peers.ts';

export interface CheckResult {
  ok: boolean;
  error?: string;
  [k: string]: unknown;
}

export interface CheckCase {
  cmd: string;
  args: string[];
}

function runRaw(args: string[], input?: string): string {
  const bin = spiffecheckBin();
  const r = spawnSync(bin, args, { encoding: 'utf8', input, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) {
    throw new Error(`spiffecheck ${args.slice(0, 2).join(' ')} exited ${r.status}: ${r.stderr}`);
  }
  return r.stdout;
}

/** One go-spiffe check, e.g. `check('id', 'spiffe://td/x')`. */
export function check(cmd: string, ...args: string[]): CheckResult {
  return JSON.parse(runRaw([cmd, ...args])) as CheckResult;
}

/** Many go-spiffe checks in one process; results are in case order. */
export function checkBatch(cases: CheckCase[]): CheckResult[] {
  if (cases.length === 0) return [];
  const out = JSON.parse(runRaw(['batch', '-'], JSON.stringify(cases))) as CheckResult[];
  if (out.length !== cases.length) throw new Error(`spiffecheck batch: ${out.length} results for ${cases.length} cases`);
  return out;
}
