// What test/interop/go/burst (go-spiffe v2.9.0 Workload API clients opened at once) prints, for the
// burst test and bench/agent-burst.ts.

/** The one JSON object test/interop/go/burst prints. */
export interface BurstReport {
  watchers: number;
  watchersServed: number;
  firstSvidP50Ms: number;
  firstSvidP99Ms: number;
  firstSvidMaxMs: number;
  allServedMs: number;
  spreadMs: number;
  watchErrors: number;
  jwtClients: number;
  jwtOk: number;
  jwtErrors: number;
  sampleErrors: string[];
}

/** The report in the last line of the client's output that opens a JSON object, if any. */
export function burstReportOf(output: string): BurstReport | undefined {
  const line = output
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  return line === undefined ? undefined : (JSON.parse(line) as BurstReport);
}
