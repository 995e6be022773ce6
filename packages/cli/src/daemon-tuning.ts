// V8 tuning for the commands that keep running (agent run, server run, oidc run, up), applied as
// one of them starts; short commands (api fetch, entry show, ...) keep V8's defaults.
import { setFlagsFromString } from 'node:v8';

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

/** Applies DAEMON_V8_FLAGS to this process (from now on: functions already optimized keep their code). */
export function tuneForDaemon(): void {
  for (const f of DAEMON_V8_FLAGS) setFlagsFromString(f);
}
